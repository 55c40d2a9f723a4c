from . import test_fa3_mapping
from . import test_freeze
from . import test_online
from . import test_online_errors
from . import test_offline
from . import test_offline_pdf
from . import test_certificates
from . import test_latarnia
