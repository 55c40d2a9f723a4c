-- A neutralized copy (test/staging restore of production) must never send to KSeF: point every
-- company at the MF test environment, drop the credentials and cached tokens, forget the sessions.
-- The sending cron also checks database.is_neutralized and does nothing.
UPDATE res_company
   SET l10n_pl_ksef_environment = 'test',
       l10n_pl_ksef_base_url = NULL,
       l10n_pl_ksef_token = NULL,
       l10n_pl_ksef_auth_certificate_id = NULL,
       l10n_pl_ksef_access_token = NULL,
       l10n_pl_ksef_access_token_until = NULL,
       l10n_pl_ksef_refresh_token = NULL,
       l10n_pl_ksef_refresh_token_until = NULL;
UPDATE l10n_pl_ksef_session SET state = 'closed', secret = NULL;
