// Lanyard in a TypeScript test suite: Testcontainers starts the image, the tests run the
// code flow against it with plain fetch. `npm test` (LANYARD_IMAGE, default "lanyard").
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { createServer } from "node:net";
import { resolve } from "node:path";
import { after, before, test } from "node:test";
import { GenericContainer, type StartedTestContainer, Wait } from "testcontainers";

const IMAGE = process.env.LANYARD_IMAGE ?? "lanyard";
const SEED = resolve(import.meta.dirname ?? ".", "../../lanyard-seed.toml");
const CLIENT = { id: "web", secret: "web-secret", redirectUri: "http://127.0.0.1:9999/cb" };

let lanyard: StartedTestContainer;
let issuer: string;

/** A free port on this machine: the issuer must be the URL the tests use, known before start. */
async function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? ok(address.port) : fail(new Error("no port"))));
    });
  });
}

before(async () => {
  const port = await freePort();
  issuer = `http://127.0.0.1:${port}`;
  lanyard = await new GenericContainer(IMAGE)
    .withExposedPorts({ container: 8080, host: port })
    .withEnvironment({ LANYARD_ISSUER: issuer })
    .withBindMounts([{ source: SEED, target: "/seed.toml", mode: "ro" }])
    .withCommand(["--ephemeral", "--dev-login", "--seed", "/seed.toml"])
    .withWaitStrategy(Wait.forHttp("/readyz", 8080))
    .start();
});

after(async () => {
  await lanyard?.stop();
});

const b64url = (data: Buffer) => data.toString("base64url");

async function discovery(): Promise<Record<string, string>> {
  const response = await fetch(`${issuer}/.well-known/openid-configuration`);
  assert.equal(response.status, 200);
  return (await response.json()) as Record<string, string>;
}

test("discovery names the issuer", async () => {
  assert.equal((await discovery()).issuer, issuer);
});

test("alice signs in with dev-login and userinfo knows her", async () => {
  const doc = await discovery();
  const verifier = b64url(randomBytes(48));
  const authorize = new URL(doc.authorization_endpoint);
  for (const [name, value] of Object.entries({
    response_type: "code", client_id: CLIENT.id, redirect_uri: CLIENT.redirectUri, scope: "openid profile email",
    state: "s-1", nonce: "n-1", login_hint: "alice", code_challenge_method: "S256",
    code_challenge: b64url(createHash("sha256").update(verifier).digest()),
  })) {
    authorize.searchParams.set(name, value);
  }
  const redirect = await fetch(authorize, { redirect: "manual" });
  assert.ok([302, 303].includes(redirect.status), `status ${redirect.status}`);
  const callback = new URL(redirect.headers.get("location") ?? "");
  assert.equal(callback.searchParams.get("iss"), issuer);

  const tokens = await fetch(doc.token_endpoint, {
    method: "POST",
    headers: { Authorization: `Basic ${Buffer.from(`${CLIENT.id}:${CLIENT.secret}`).toString("base64")}` },
    body: new URLSearchParams({
      grant_type: "authorization_code", code: callback.searchParams.get("code") ?? "",
      redirect_uri: CLIENT.redirectUri, code_verifier: verifier,
    }),
  });
  assert.equal(tokens.status, 200);
  const { access_token, id_token } = (await tokens.json()) as { access_token: string; id_token: string };
  const claims = JSON.parse(Buffer.from(id_token.split(".")[1], "base64url").toString());
  assert.equal(claims.iss, issuer);
  assert.equal(claims.nonce, "n-1");

  const userinfo = await fetch(doc.userinfo_endpoint, { headers: { Authorization: `Bearer ${access_token}` } });
  assert.equal(userinfo.status, 200);
  const user = (await userinfo.json()) as Record<string, unknown>;
  assert.equal(user.sub, claims.sub);
  assert.equal(user.email, "alice@example.test");
});
