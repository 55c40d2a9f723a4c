from . import account_chart_template
from . import account_tax
from . import account_move
from . import ir_attachment
from . import res_company
from . import l10n_pl_ksef_event
from . import certificate
from . import account_move_ksef_offline
