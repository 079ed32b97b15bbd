// Baseline for bench/ws.sh and bench/chat.sh: a broadcast server on the `ws`
// package, the way a Node service would write one. Same subset of API.md as
// bench/ws_broadcast_beast.cpp: GET /ws upgrades (no token check),
// `subscribe` is answered `subscribed`, POST /api/v1/wallet/deposit
// {"amount":k} adds k to one in-memory balance and sends a `wallet.updated`
// frame to every subscribed socket, GET /api/v1/wallet shows the balance.
// Chat (bench/chat.sh): a `send` op numbers the message, sends
// `message.received` to every subscribed socket and acks the sender; in
// memory only (nothing durable). One process.
'use strict';
const http = require('http');
const crypto = require('crypto');
const { WebSocketServer, WebSocket } = require('ws');

const port = Number(process.argv[2]);
let balance = 0;
let version = 0;
let chatSeq = 0;
const subscribed = new Set();

function broadcast(frame) {
  for (const ws of subscribed) {
    if (ws.readyState === WebSocket.OPEN) ws.send(frame);
  }
}

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
      broadcast(JSON.stringify({ event: 'wallet.updated', topic: 'bench', seq: version,
                                 data: { balance, version } }));
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
  ws.on('close', () => subscribed.delete(ws));
  ws.on('message', (raw) => {
    let op = {};
    try { op = JSON.parse(raw); } catch (e) { op = {}; }
    if (op.op === 'send') {
      chatSeq += 1;
      const seq = chatSeq;
      const room = String(op.topic || '').split(':')[1] || '';
      broadcast(JSON.stringify({ event: 'message.received', topic: op.topic, seq,
                                 data: { id: crypto.randomUUID(), room_id: room,
                                         sender_id: 'bench', text: op.text, seq,
                                         created_at: new Date().toISOString() } }));
      ws.send(JSON.stringify({ op: 'ack', id: op.id, seq }));
      return;
    }
    subscribed.add(ws);
    ws.send('{"op":"subscribed","topic":"bench","seq":' + version + '}');
  });
});

server.listen(port, '127.0.0.1');
