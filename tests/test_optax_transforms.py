"""Where optax's own transform tests found jopt's transforms differing from optax 0.2.8."""

import jax.numpy as jnp
import optax
import pytest

import jopt
import jopt.contrib


@pytest.mark.parametrize(
    "name", ["scale_by_polyak", "contrib.momo", "contrib.momo_adam"], ids=lambda n: n
)
def test_missing_value_is_a_type_error_as_in_optax(name):
    params = jnp.array([1.0, -1.0])
    for lib in (optax, jopt):
        factory = lib
        for part in name.split("."):
            factory = getattr(factory, part)
        tx = factory()
        with pytest.raises(TypeError):
            tx.update(params, tx.init(params), params)
