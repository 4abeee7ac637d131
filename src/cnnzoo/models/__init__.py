"""One module per architecture family; importing a module registers its specs."""

import importlib
import pkgutil

# Every module in this package is a family; importing it registers its specs.
for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
