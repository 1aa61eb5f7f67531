"""Where optax's own alias tests found jopt's optimizers differing from optax 0.2.8."""

import warnings

import pytest

import jopt


def test_optimistic_adam_warning_names_the_replacement_as_optax():
    import optax

    with warnings.catch_warnings(record=True) as theirs:
        warnings.simplefilter("always")
        optax.optimistic_adam(0.1)
    with pytest.warns(DeprecationWarning) as ours:
        jopt.optimistic_adam(0.1)
    assert "use `optimistic_adam_v2` instead" in str(theirs[0].message)
    assert "use `optimistic_adam_v2` instead" in str(ours[0].message)
