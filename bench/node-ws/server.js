// Baseline for bench/ws.sh: a broadcast server on the `ws` package, the way
// a Node service would write one. Same subset of API.md as
// bench/ws_broadcast_beast.cpp: GET /ws upgrades (no token check),
// `subscribe` is answered `subscribed`, POST /api/v1/wallet/deposit
// {"amount":k} adds k to one in-memory balance and sends a `wallet.updated`
// frame to every socket, GET /api/v1/wallet shows the balance. One process.
'use strict';
const http = require('http');
const { WebSocketServer, WebSocket } = require('ws');

const port = Number(process.argv[2]);
let balance = 0;
let version = 0;

const server = http.createServer((req, res) => {
  let body = '';
  req.on('data', (chunk) => { body += chunk; });
  req.on('end', () => {
    res.setHeader('Content-Type', 'application/json');
    if (req.method === 'POST') {
      let amount = 0;
      try { amount = JSON.parse(body).amount | 0; } catch (e) { amount = 0; }
      balance += amount;
      version += 1;
      const frame = JSON.stringify({ event: 'wallet.updated', topic: 'bench', seq: version,
                                     data: { balance, version } });
      for (const ws of wss.clients) {
        if (ws.readyState === WebSocket.OPEN) ws.send(frame);
      }
      res.statusCode = 201;
      res.end('{"type":"deposit"}');
    } else {
      res.statusCode = 200;
      res.end(JSON.stringify({ balance }));
    }
  });
});

const wss = new WebSocketServer({ server, path: '/ws' });
wss.on('connection', (ws) => {
  ws.on('message', () => {
    ws.send('{"op":"subscribed","topic":"bench","seq":' + version + '}');
  });
});

server.listen(port, '127.0.0.1');
