-- The runbook's security review: accounts with more than %(threshold)s failed logins since %(since)s.
-- Where logins are kept elsewhere, set reports.failed_login_query to a query with the same two
-- parameters returning at least `account` and `failed_logins` (other columns are shown as well).
SELECT email                      AS account,
       count(*)                   AS failed_logins,
       count(DISTINCT ip_address) AS addresses,
       max(attempted_at)          AS last_failed_at
FROM auth.login_attempts
WHERE NOT success
  AND attempted_at >= %(since)s
GROUP BY email
HAVING count(*) > %(threshold)s
ORDER BY failed_logins DESC, account
LIMIT 100
