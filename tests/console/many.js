// The console in Chromium while the node holds many live actors: signs in
// as the admin, opens the Actors view and pages through it, then counts
// what the page's WebSocket receives over a few seconds. Prints one JSON
// line: {total, first_page_ms, next_page_ms, rows, frames, frame_bytes,
// seconds, errors}. Used by bench/console.sh.
//
//   node many.js URL ADMIN_PHONE ADMIN_PASSWORD [SECONDS (10)]
// Exits 1 if a step failed or the page raised an error.
const { chromium } = require('playwright-core');

const [url, phone, password, secondsArg] = process.argv.slice(2);
const seconds = Number(secondsArg || 10);

async function main() {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox'],
  });
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const out = { errors: [], frames: 0, frame_bytes: 0, seconds };
  page.on('pageerror', (e) => out.errors.push(e.message));
  let counting = false;
  page.on('websocket', (ws) => ws.on('framereceived', (f) => {
    if (!counting) return;
    out.frames += 1;
    out.frame_bytes += typeof f.payload === 'string' ? f.payload.length : f.payload.byteLength;
  }));
  const summary = () => page.locator('#actors-summary').textContent();
  const waitSummary = async (re, ms = 30000) => {
    const end = Date.now() + ms;
    for (;;) {
      const m = re.exec(await summary());
      if (m) return m;
      if (Date.now() > end) throw new Error(`timed out waiting for ${re} (summary: ${await summary()})`);
      await page.waitForTimeout(20);
    }
  };
  try {
    await page.goto(`${url}/console`);
    await page.getByLabel('Phone or email').fill(phone);
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('#conn', { hasText: 'Live' }).waitFor({ timeout: 15000 });

    let t0 = Date.now();
    await page.getByRole('link', { name: 'Actors', exact: true }).click();
    const first = await waitSummary(/Showing 1–(\d[\d,]*) of ([\d,]+) live actors/);
    out.first_page_ms = Date.now() - t0;
    out.total = Number(first[2].replace(/,/g, ''));
    out.rows = await page.locator('#actors-body tr').count();

    t0 = Date.now();
    await page.getByRole('button', { name: 'Next' }).click();
    await waitSummary(/Showing (?!1–)[\d,]+–/);
    out.next_page_ms = Date.now() - t0;

    await page.getByRole('link', { name: 'Overview', exact: true }).click();
    counting = true;
    await page.waitForTimeout(seconds * 1000);
    counting = false;
  } catch (e) {
    out.errors.push(e.message);
  } finally {
    console.log(JSON.stringify(out));
    await browser.close();
    if (out.errors.length) process.exitCode = 1;
  }
}

main();
