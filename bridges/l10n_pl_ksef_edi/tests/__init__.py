from . import test_edi_bridge
from . import test_i18n
