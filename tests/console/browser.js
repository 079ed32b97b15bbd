// Drives the node's inspection console (/console) in Debian's headless
// Chromium, as an operator would: a non-admin is refused; the admin signs in
// and sees this node and its live wallets; opens a wallet by
// `wallet:<id>`, sees its balance and ledger sum agree; kills it and sees
// its restart count go up without reloading; finds the kill in the audit.
// A screenshot of each step goes to SHOTS.
//
//   node browser.js URL ADMIN_PHONE ADMIN_PASSWORD CLIENT_PHONE CLIENT_PASSWORD WALLET_USER_ID SHOTS
// Exits 0 when every step passed; 1 (with the step) otherwise.
const { chromium } = require('playwright-core');

const [url, adminPhone, adminPassword, clientPhone, clientPassword, walletId, shots] =
  process.argv.slice(2);

async function main() {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    // Root in CI: Chromium's sandbox needs user namespaces it may not get.
    args: ['--no-sandbox'],
  });
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const problems = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  let n = 0;
  const shot = (name) =>
    page.screenshot({ path: `${shots}/${String(++n).padStart(2, '0')}-${name}.png`, fullPage: true });
  // Waits until `check` returns true (it may throw meanwhile), at most `ms`.
  const until = async (what, check, ms = 10000) => {
    const end = Date.now() + ms;
    let last;
    for (;;) {
      try {
        if (await check()) return;
      } catch (e) {
        last = e;
      }
      if (Date.now() > end) throw new Error(`timed out: ${what}${last ? ` (${last.message})` : ''}`);
      await page.waitForTimeout(100);
    }
  };
  const text = (testId) => page.getByTestId(testId).textContent();
  const signIn = async (who, password) => {
    await page.getByLabel('Phone or email').fill(who);
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Sign in' }).click();
  };
  try {
    await page.goto(`${url}/console`);
    await signIn(clientPhone, clientPassword);
    await until('a client is refused', async () =>
      /for admins/.test(await page.locator('#signin-error').textContent()));
    if (await page.locator('#nav').isVisible()) throw new Error('a client sees the console');
    await shot('client-refused');

    await page.goto(`${url}/console`);
    await signIn(adminPhone, adminPassword);
    await until('live over system:inspect', async () =>
      (await page.locator('#conn').textContent()).trim() === 'Live');
    await until('this node is shown', async () => (await text('node-id')).trim().length > 0);
    await until('live wallets are counted', async () => Number(await text('count-wallet')) >= 1);
    await shot('overview');

    await page.getByRole('link', { name: 'Actor', exact: true }).click();
    await page.getByLabel('Actor').fill(`wallet:${walletId}`);
    await page.getByRole('button', { name: 'Open' }).click();
    await until('the balance and the ledger sum agree', async () =>
      /agrees/.test(await text('ledger-check')));
    const before = Number(await text('actor-restarts'));
    await shot('wallet');

    page.once('dialog', (d) => d.accept());
    await page.getByRole('button', { name: 'Kill' }).click();
    await until('the restart count goes up without a reload', async () =>
      Number(await text('actor-restarts')) === before + 1);
    await until('the ledger still agrees', async () => /agrees/.test(await text('ledger-check')));
    await shot('killed-and-restarted');

    await page.getByRole('link', { name: 'Audit', exact: true }).click();
    await until('the kill is in the audit', async () => {
      const rows = await page.locator('#audit-body').textContent();
      return rows.includes(`wallet:${walletId}`) && rows.includes('kill') && rows.includes('console');
    });
    await shot('audit');
    if (problems.length) throw new Error(problems.join('; '));
    console.log(`console: ${n} steps passed`);
  } catch (e) {
    await shot('failed').catch(() => {});
    console.error(`console: ${e.message}`);
    process.exitCode = 1;
  } finally {
    await browser.close();
  }
}

main();
