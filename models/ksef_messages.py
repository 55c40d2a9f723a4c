"""Translated, user-facing texts for what the pure ``ksef/`` core reports.

The core stays free of Odoo and writes its exception messages in English for logs and
developers. Whatever reaches an accountant (an error dialog, the chatter, the KSeF error field of
an invoice) goes through here instead: the error *kind* picks a translatable sentence, and only
data travels as parameters — codes, numbers, and KSeF's own (Polish) descriptions, which are
shown as details, never as the sentence itself.
"""
from ..ksef import errors as ksef_errors
from ..ksef import fa3


def user_language_env(env):
    """``env`` with a language: like Odoo's ``_()``, fall back to the user's language when the
    context has none (cron jobs, server actions), so that a sentence and its inserted parts are
    never in two languages."""
    if env.lang:
        return env
    return env(context=dict(env.context, lang=env.user.lang or "en_US"))


def company_language(company):
    """The language a company's KSeF notes are written in: Polish for a company taxed in Poland
    whenever Polish is installed (KSeF, its deadlines and its auditors speak Polish; the company
    partner's language is often left at the installer's English), else its partner's language."""
    env = company.env
    installed = dict(env["res.lang"].get_installed())
    if "pl_PL" in installed and (company.account_fiscal_country_id.code or company.country_id.code) == "PL":
        return "pl_PL"
    return company.partner_id.lang or env.user.lang or "en_US"


def in_company_language(records, company):
    """``records`` writing in ``company``'s language when the context names none. A cron job runs
    as OdooBot, whose language is not the company's: a Polish company's reminders, notes and
    errors written by a cron are in Polish all the same."""
    if records.env.context.get("lang"):
        return records
    return records.with_context(lang=company_language(company.sudo()))


def ksef_error_text(env, error):
    """One translated sentence (plus KSeF's own description as detail) for an error met on the
    way to KSeF: a ``ksef.errors.KsefError`` or a network error of ``requests``/the OS."""
    _ = user_language_env(env)._  # a module-level function: tell the translation which language to use
    if not isinstance(error, ksef_errors.KsefError):
        if isinstance(error, TimeoutError) or type(error).__name__.endswith("Timeout"):
            return _("KSeF did not answer in time.")
        return _("There is no connection to KSeF (the network or the KSeF server cannot be reached).")
    code = error.code if error.code is not None else error.http_status
    if isinstance(error, ksef_errors.KsefTimeout):
        text = _("KSeF did not answer in time.")
    elif isinstance(error, ksef_errors.KsefUnavailable):
        if error.http_status:
            text = _("KSeF is temporarily unavailable (server error %(code)s).", code=error.http_status)
        elif error.code is not None:
            text = _("KSeF could not process the request for now (code %(code)s).", code=error.code)
        else:
            text = _("There is no connection to KSeF (the network or the KSeF server cannot be reached).")
    elif isinstance(error, ksef_errors.RateLimited):
        text = _("KSeF limits the number of requests: try again in %(seconds)s seconds.",
                 seconds=error.retry_after or 60)
    elif isinstance(error, ksef_errors.AuthenticationFailed):
        text = _("KSeF refused the login (code %(code)s).", code=code)
    elif isinstance(error, ksef_errors.Unauthorized):
        text = _("KSeF did not accept the access credentials (code %(code)s).", code=code)
    elif isinstance(error, ksef_errors.Forbidden):
        # KSeF's reason code (e.g. missing-permissions) is an English token: not shown.
        text = _("KSeF refused access: the credentials lack the permission for this operation.")
    elif isinstance(error, ksef_errors.Gone):
        text = _("KSeF no longer keeps the status of this operation.")
    elif isinstance(error, ksef_errors.PublicKeyUnknown):
        text = _("KSeF no longer accepts the Ministry of Finance encryption key that was used; the keys are "
                 "reloaded on the next attempt.")
    elif isinstance(error, (ksef_errors.SessionNotFound, ksef_errors.SessionClosed)):
        text = _("The KSeF session is closed or unknown to KSeF (code %(code)s); a new session is opened on the "
                 "next attempt.", code=code)
    elif isinstance(error, ksef_errors.Duplicate):
        if error.original_ksef_number:
            text = _("KSeF already holds an invoice with this number (KSeF number of the original: %(number)s).",
                     number=error.original_ksef_number)
        else:
            text = _("KSeF already holds an invoice with this number.")
    elif isinstance(error, ksef_errors.Rejected):
        text = _("KSeF rejected the request (code %(code)s).", code=code)
    elif isinstance(error, ksef_errors.SessionFailed):
        text = _("The KSeF session ended with an error (code %(code)s).", code=code)
    elif isinstance(error, ksef_errors.IntegrityError):
        text = _("The document downloaded from KSeF does not match the checksum KSeF announced for it.")
    elif code is not None:
        text = _("KSeF answered with an error (code %(code)s).", code=code)
    else:
        text = _("KSeF answered with an error.")
    detail = ksef_description(error)
    if detail:
        text = _("%(message)s KSeF says: %(description)s", message=text, description=detail)
    return text


def ksef_description(error):
    """KSeF's own words for an error (its description and details, in Polish on the real
    system), or "" when KSeF sent none."""
    if not isinstance(error, ksef_errors.KsefError):
        return ""
    parts = [error.description] if error.description else []
    parts += [str(detail) for detail in error.details or [] if detail]
    return "; ".join(parts)


def fa3_error_text(env, error):
    """A translated sentence for an FA(3) problem found by the core. Schema issues are listed as
    technical details (XPath and the validator's message) because they point at the exact element."""
    _ = user_language_env(env)._
    if isinstance(error, fa3.Fa3ValidationError):
        issues = "; ".join(str(issue) for issue in error.issues[: error.SHOWN])
        return _("the e-invoice does not conform to the official FA(3) schema (%(count)s problem(s)). "
                 "Technical details: %(issues)s", count=len(error.issues), issues=issues)
    return _("the invoice data cannot be written as an FA(3) e-invoice. Technical details: %(detail)s",
             detail=str(error))
