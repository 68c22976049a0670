"""One folder per capability. Its `__init__.py` declares `CAPABILITY` (what it contributes: assets,
checks, schedule, sensors); its modules build them. Capabilities do not import each other (an
import-linter contract): what one reads of another's materializations goes through `records/`."""
