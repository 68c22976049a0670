"""E-mail through the configured SMTP server (`email:`): STARTTLS, SSL or plain, optional login,
retried with backoff. The password never appears in an error: failures name the server only.
"""

import smtplib
import ssl
import time
from collections.abc import Callable
from email.message import EmailMessage

from ops_pipelines.config import Email
from ops_pipelines.errors import OpsError

BACKOFF_SECONDS = 1.0  # before the second attempt; doubled for each next one


class MailUndelivered(OpsError):
    """The SMTP server did not take the message; `permanent` when retrying cannot help (5xx)."""

    def __init__(self, message: str, permanent: bool = False):
        super().__init__(message)
        self.permanent = permanent


def send(settings: Email, message: EmailMessage, sleep: Callable[[float], None] = time.sleep) -> None:
    """Send `message` (its From is set here) to its To; raises MailUndelivered after the last attempt."""
    del message["From"]
    message["From"] = settings.sender
    where = f"SMTP server {settings.host}:{settings.port}"
    problem, wait = "no attempt made", BACKOFF_SECONDS
    for attempt in range(1, settings.attempts + 1):
        try:
            with _connect(settings) as smtp:
                if settings.username and settings.password:
                    smtp.login(settings.username, settings.password.get_secret_value())
                smtp.send_message(message)
            return
        except smtplib.SMTPAuthenticationError as exc:  # retrying the same password cannot help
            problem = f"{exc.smtp_code} {_text(exc.smtp_error)}"
            raise MailUndelivered(
                f"{where} refused the login of {settings.username}: {problem} (check email.username and its password)",
                permanent=True,
            ) from None
        except smtplib.SMTPNotSupportedError as exc:  # the server lacks what the settings ask for
            raise MailUndelivered(f"{where}: {_unsupported(exc, settings)}", permanent=True) from None
        except smtplib.SMTPResponseException as exc:
            problem = f"{exc.smtp_code} {_text(exc.smtp_error)}"
            if 500 <= exc.smtp_code < 600:
                raise MailUndelivered(f"{where} refused the message: {problem}", permanent=True) from None
        except smtplib.SMTPRecipientsRefused as exc:
            refused = ", ".join(sorted(exc.recipients))
            raise MailUndelivered(f"{where} refused the recipients {refused}", permanent=True) from None
        except (smtplib.SMTPException, OSError) as exc:  # refused, reset, timed out, TLS
            problem = str(exc) or type(exc).__name__
        if attempt < settings.attempts:
            sleep(wait)
            wait *= 2
    raise MailUndelivered(f"{where} unreachable after {settings.attempts} attempts: {problem}")


def _connect(settings: Email) -> smtplib.SMTP:
    timeout = settings.timeout.seconds
    if settings.security == "ssl":
        return smtplib.SMTP_SSL(settings.host, settings.port, timeout=timeout, context=ssl.create_default_context())
    smtp = smtplib.SMTP(settings.host, settings.port, timeout=timeout)
    if settings.security == "starttls":
        try:
            smtp.starttls(context=ssl.create_default_context())
        except BaseException:
            smtp.close()
            raise
    return smtp


def _unsupported(exc: smtplib.SMTPNotSupportedError, settings: Email) -> str:
    text = str(exc)
    if "STARTTLS" in text:
        return "does not offer STARTTLS (security: starttls): set security: ssl or none to match the server"
    if "AUTH" in text:
        return (
            "does not offer a login (AUTH) on this connection (email.username is set): it may offer it only "
            "over TLS (security: starttls or ssl)"
        )
    return text


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value
