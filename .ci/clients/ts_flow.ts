// One customer flow through openapi-fetch typed by openapi-typescript from
// the served document: sign in, list the schedules, read one, read the
// regularization offers of the unpaid one. Compiled with `tsc --strict`
// and library checking on (.ci/clients/run); run with the base URL.
import createClient from "openapi-fetch";
import type { paths } from "./schema.js";

const ORG = "fractio";
const EMAIL = "sophie.laurent@example.com";
const PASSWORD = "Sophie-Demo-2026!";
const UNPAID = "FR-10398";

function fail(message: string): never {
  console.error(`typescript client flow: ${message}`);
  process.exit(1);
}

async function main(baseUrl: string): Promise<void> {
  const anonymous = createClient<paths>({ baseUrl });
  const login = await anonymous.POST("/v1/auth/login", {
    body: { organization: ORG, email: EMAIL, password: PASSWORD },
  });
  if (login.error !== undefined || login.response.status !== 200) {
    fail(`sign-in answered ${login.response.status}: ${JSON.stringify(login.error)}`);
  }
  const accessToken: string = login.data.access_token;

  const client = createClient<paths>({
    baseUrl,
    headers: { Authorization: `Bearer ${accessToken}` },
  });

  const listing = await client.GET("/v1/me/schedules", {});
  if (listing.error !== undefined || listing.response.status !== 200) {
    fail(`listing answered ${listing.response.status}: ${JSON.stringify(listing.error)}`);
  }
  const schedules = listing.data.data;
  const unpaid = schedules.find((s) => s.order_number === UNPAID);
  if (unpaid === undefined) {
    fail(`no schedule ${UNPAID} among ${schedules.map((s) => s.order_number).join(", ")}`);
  }

  const one = await client.GET("/v1/me/schedules/{id}", {
    params: { path: { id: unpaid.id } },
  });
  if (one.error !== undefined || one.response.status !== 200) {
    fail(`reading ${unpaid.id} answered ${one.response.status}: ${JSON.stringify(one.error)}`);
  }
  const status: string = one.data.status;
  if (one.data.order_number !== UNPAID || status !== "unpaid") {
    fail(`read ${one.data.order_number} with status ${status}`);
  }

  const offers = await client.GET("/v1/me/schedules/{id}/regularization", {
    params: { path: { id: one.data.id } },
  });
  if (offers.error !== undefined || offers.response.status !== 200) {
    fail(`offers answered ${offers.response.status}: ${JSON.stringify(offers.error)}`);
  }
  if (offers.data.offers.length === 0) {
    fail("no regularization offer for the unpaid schedule");
  }
  console.log(
    `typescript client flow: signed in, ${schedules.length} schedules, read ${one.data.order_number}, ` +
      `${offers.data.offers.length} regularization offers`,
  );
}

const baseUrl = process.argv[2];
if (baseUrl === undefined) {
  fail("usage: node ts_flow.js BASE_URL");
}
await main(baseUrl);
