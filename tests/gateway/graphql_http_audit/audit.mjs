// graphql-http's server audit against a running gateway; prints one JSON array of results.
//
//   AUDIT_URL=http://127.0.0.1:8000/graphql AUDIT_TOKEN=<bearer token> node audit.mjs
//
// Every request the audit makes carries the bearer token (the gateway answers 401 without one);
// the token comes from the environment, not the command line, so `ps` does not show it.
import { auditServer } from 'graphql-http';

const url = process.env.AUDIT_URL;
const token = process.env.AUDIT_TOKEN;
if (!url || !token) {
  console.error('set AUDIT_URL and AUDIT_TOKEN');
  process.exit(2);
}

function fetchWithToken(input, init = {}) {
  const headers = new Headers(init.headers);
  headers.set('authorization', `Bearer ${token}`);
  return fetch(input, { ...init, headers });
}

const results = await auditServer({ url, fetchFn: fetchWithToken });
const report = results.map(({ id, name, status, reason }) => ({ id, name, status, reason }));
process.stdout.write(JSON.stringify(report, null, 1) + '\n');
