from . import account_chart_template
from . import account_tax
from . import account_move
from . import ir_attachment
from . import res_company
