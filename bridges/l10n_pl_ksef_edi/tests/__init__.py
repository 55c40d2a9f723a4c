from . import test_edi_bridge
