"""resdsl: a compiler for residual networks.

The pipeline is a few functions a user can call one by one::

    import resdsl
    module = resdsl.parse_file("specs/resnet110.rds")   # text -> AST
    program = resdsl.link(module)                        # imports, the prelude, definitions
    net = resdsl.build(program)                          # -> IR (a networkx graph)
    resdsl.check(net)                                    # shapes, additions, train section
    resdsl.summary(net)                                  # parameters and MACs
    files = resdsl.emit(net, "torch")                    # {"model.py": ..., "train.py": ..., ...}
"""

from .api import check_spec, load
from .check import check
from .costs import costs, summary
from .elaborate import build
from .emit import emit
from .errors import ErrorGroup, ParseError, ResdslError, ShapeError, SpecError, TrainError
from .linker import link
from .parser import parse, parse_file

__version__ = "0.1.0"


__all__ = [
    "ErrorGroup",
    "ParseError",
    "ResdslError",
    "ShapeError",
    "SpecError",
    "TrainError",
    "build",
    "check",
    "check_spec",
    "costs",
    "emit",
    "link",
    "load",
    "parse",
    "parse_file",
    "summary",
]
