/**
 * The authorization server's HTML: a plain, accessible sign-in and consent page, a patient picker and
 * an error page. Every value is HTML-escaped; pages carry no script and no external resources.
 */

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);
}

function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)} - Continuum</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 32rem; margin: 2rem auto; padding: 0 1rem; line-height: 1.5; color: #1a1a1a; }
label { display: block; margin-top: 1rem; font-weight: 600; }
input[type=text], input[type=password] { width: 100%; padding: .5rem; font-size: 1rem; box-sizing: border-box; }
button { margin-top: 1.25rem; margin-right: .5rem; padding: .6rem 1.2rem; font-size: 1rem; }
.error { color: #a00000; border-left: 4px solid #a00000; padding-left: .75rem; }
fieldset { margin-top: 1rem; }
</style>
</head>
<body>
<main>
${body}
</main>
</body>
</html>`;
}

/** A human description of one scope. */
function describeScope(scope: string): string {
  const m = /^(patient|user|system)\/([^.]+)\.([^?]+)(\?.*)?$/.exec(scope);
  if (!m) {
    const named: Record<string, string> = {
      openid: 'Know who you are (OpenID Connect)',
      fhirUser: 'Know which FHIR record you are',
      launch: 'Open in the context of your current record',
      'launch/patient': 'Choose which patient record it works with',
      offline_access: 'Keep access after you close it (until you revoke it)',
      online_access: 'Keep access while you are signed in',
    };
    return named[scope] ?? scope;
  }
  const [, context, type, perm, query] = m;
  const verbs: string[] = [];
  const letters = perm === 'read' ? 'rs' : perm === 'write' ? 'cud' : perm === '*' ? 'cruds' : perm;
  const words: Record<string, string> = { c: 'create', r: 'read', u: 'update', d: 'delete', s: 'search' };
  for (const l of letters) {
    if (words[l]) verbs.push(words[l]);
  }
  const what = type === '*' ? 'all kinds of records' : `${type} records`;
  const whose = context === 'patient' ? "of the selected patient" : context === 'user' ? 'you have access to' : 'on the server';
  return `${verbs.join(', ')} ${what} ${whose}${query ? ` (only ${query.slice(1)})` : ''}`;
}

export function loginPage(options: { requestId: string; clientName: string; scopes: string[]; error?: string; username?: string }): string {
  const items = options.scopes.map((s) => `<li><code>${escapeHtml(s)}</code>: ${escapeHtml(describeScope(s))}</li>`).join('\n');
  return page(
    'Sign in',
    `<h1>Sign in to Continuum</h1>
<p><strong>${escapeHtml(options.clientName)}</strong> asks to:</p>
<ul>
${items}
</ul>
${options.error ? `<p class="error" role="alert">${escapeHtml(options.error)}</p>` : ''}
<form method="post" action="login">
<input type="hidden" name="request" value="${escapeHtml(options.requestId)}">
<label for="username">User name</label>
<input type="text" id="username" name="username" autocomplete="username" required value="${escapeHtml(options.username ?? '')}">
<label for="password">Password</label>
<input type="password" id="password" name="password" autocomplete="current-password" required>
<button type="submit" name="action" value="allow">Sign in and allow</button>
<button type="submit" name="action" value="deny" formnovalidate>Deny</button>
</form>`,
  );
}

export function pickerPage(options: { requestId: string; clientName: string; patients: { id: string; label: string }[]; filter?: string }): string {
  const rows = options.patients
    .map(
      (p, i) =>
        `<div><input type="radio" name="patient" id="p${i}" value="${escapeHtml(p.id)}"${i === 0 ? ' required' : ''}> <label for="p${i}" style="display:inline;font-weight:normal">${escapeHtml(p.label)}</label></div>`,
    )
    .join('\n');
  return page(
    'Choose a patient',
    `<h1>Choose a patient</h1>
<p><strong>${escapeHtml(options.clientName)}</strong> will work with the patient you choose.</p>
<form method="post" action="login">
<input type="hidden" name="request" value="${escapeHtml(options.requestId)}">
<label for="filter">Family name starts with</label>
<input type="text" id="filter" name="filter" value="${escapeHtml(options.filter ?? '')}">
<button type="submit" name="action" value="filter" formnovalidate>Search</button>
<fieldset>
<legend>Patients</legend>
${rows || '<p>No patient matches.</p>'}
</fieldset>
<button type="submit" name="action" value="pick">Continue</button>
<button type="submit" name="action" value="deny" formnovalidate>Deny</button>
</form>`,
  );
}

/** The management page: sign in, then the apps holding lasting access (refresh tokens), each revocable. */
export function managePage(options: { session?: string; grants?: { id: string; client: string; scope: string; expires?: string; patient?: string }[]; error?: string; notice?: string }): string {
  if (!options.session) {
    return page(
      'Your connected apps',
      `<h1>Your connected apps</h1>
<p>Sign in to see the applications that can reach your records without you present, and to revoke them.</p>
${options.error ? `<p class="error" role="alert">${escapeHtml(options.error)}</p>` : ''}
<form method="post" action="manage">
<label for="username">User name</label>
<input type="text" id="username" name="username" autocomplete="username" required>
<label for="password">Password</label>
<input type="password" id="password" name="password" autocomplete="current-password" required>
<button type="submit" name="action" value="login">Sign in</button>
</form>`,
    );
  }
  const rows = (options.grants ?? [])
    .map(
      (g) => `<tr><td>${escapeHtml(g.client)}</td><td><code>${escapeHtml(g.scope)}</code></td><td>${escapeHtml(g.patient ?? '')}</td><td>${escapeHtml(g.expires ?? '')}</td>
<td><form method="post" action="manage"><input type="hidden" name="session" value="${escapeHtml(options.session as string)}"><input type="hidden" name="grant" value="${escapeHtml(g.id)}"><button type="submit" name="action" value="revoke">Revoke</button></form></td></tr>`,
    )
    .join('\n');
  return page(
    'Your connected apps',
    `<h1>Your connected apps</h1>
${options.notice ? `<p role="status">${escapeHtml(options.notice)}</p>` : ''}
${rows ? `<table><thead><tr><th>Application</th><th>Access</th><th>Patient</th><th>Until</th><th></th></tr></thead><tbody>\n${rows}\n</tbody></table>` : '<p>No application holds lasting access.</p>'}`,
  );
}

export function errorPage(title: string, message: string): string {
  return page(title, `<h1>${escapeHtml(title)}</h1>\n<p class="error" role="alert">${escapeHtml(message)}</p>`);
}
