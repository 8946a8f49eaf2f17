"""The sign-in page: plain HTML with no script, so it works before anything of Streamlit loads."""

import html

# Sent with the page: nothing may frame it, load from elsewhere, or post it anywhere but here.
HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}

TEMPLATE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in · GenAILabs</title>
<style>
  body { font-family: system-ui, sans-serif; background: #f6f7f9; color: #1f2430; margin: 0; }
  main { max-width: 22rem; margin: 12vh auto; background: #fff; padding: 2rem 2rem 1.5rem;
         border-radius: 0.75rem; box-shadow: 0 1px 4px rgba(0, 0, 0, 0.12); }
  h1 { font-size: 1.4rem; margin: 0 0 1.25rem; }
  label { display: block; font-size: 0.9rem; margin: 0.9rem 0 0.3rem; }
  input { width: 100%; box-sizing: border-box; padding: 0.55rem 0.6rem; font-size: 1rem;
          border: 1px solid #c5c9d3; border-radius: 0.4rem; }
  button { margin-top: 1.4rem; width: 100%; padding: 0.6rem; font-size: 1rem; border: 0;
           border-radius: 0.4rem; background: #ff4b4b; color: #fff; cursor: pointer; }
  .error { color: #a11; background: #fdecec; padding: 0.6rem; border-radius: 0.4rem; }
  .note { color: #1d4f91; background: #eaf2fd; padding: 0.6rem; border-radius: 0.4rem; }
</style>
</head>
<body>
<main>
<h1>Sign in to GenAILabs</h1>
{message}
<form method="post" action="/signin">
  <label for="login">Login</label>
  <input id="login" name="login" value="{login}" autocomplete="username" maxlength="64" required autofocus>
  <label for="password">Password</label>
  <input id="password" name="password" type="password" autocomplete="current-password" maxlength="1024" required>
  <button type="submit">Sign in</button>
</form>
</main>
</body>
</html>
"""


def render(error: str | None = None, note: str | None = None, login: str = "") -> str:
    """The page, with an error (role alert) or a note above the form; every value escaped."""
    message = ""
    if error:
        message = f'<p class="error" role="alert">{html.escape(error)}</p>'
    elif note:
        message = f'<p class="note" role="status">{html.escape(note)}</p>'
    return TEMPLATE.replace("{message}", message).replace("{login}", html.escape(login[:64], quote=True))
