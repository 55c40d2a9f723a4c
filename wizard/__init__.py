from . import l10n_pl_ksef_offline_wizard
from . import l10n_pl_ksef_certificate_upload
from . import l10n_pl_ksef_certificate_request_wizard
