from . import test_fa3_mapping
from . import test_freeze
from . import test_online
from . import test_online_errors
from . import test_engine
from . import test_engine_faults
