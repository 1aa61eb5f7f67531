"""Named optimizers: each a short chain of building blocks, grouped by family."""

from jopt.optimizers._adam_family import (
    adam,
    adamax,
    adamaxw,
    adamw,
    amsgrad,
    nadam,
    nadamw,
    radam,
)
from jopt.optimizers._adaptive import (
    adabelief,
    adadelta,
    adagrad,
    adan,
    novograd,
    rmsprop,
    yogi,
)
from jopt.optimizers._factored import adafactor, sm3
from jopt.optimizers._layerwise import fromage, lamb, lars
from jopt.optimizers._optimistic import (
    optimistic_adam,
    optimistic_adam_v2,
    optimistic_gradient_descent,
)
from jopt.optimizers._second_order import lbfgs
from jopt.optimizers._sgd import noisy_sgd, polyak_sgd, sgd
from jopt.optimizers._sign import lion, rprop, sign_sgd, signum

__all__: list[str] = [
    # further optimizers (parity with optax's top level)
    "adabelief", "adafactor", "adan", "fromage", "lamb", "lars", "noisy_sgd", "novograd",
    "optimistic_adam", "optimistic_adam_v2", "optimistic_gradient_descent", "polyak_sgd",
    "rprop", "sign_sgd", "signum", "sm3", "yogi",
    # line search / second order
    "lbfgs",
    # core: classic optimizers
    "adam", "adamax", "adamaxw", "adamw", "amsgrad", "nadam", "nadamw", "radam", "sgd",
    "adadelta", "adagrad", "rmsprop", "lion",
]  # fmt: skip
