from . import test_fa3_mapping
from . import test_freeze
