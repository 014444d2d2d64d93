// The demo seller's API (scripts/demo.sh): articles and a data endpoint, priced per request by
// `farthing gateway` in front of it, and a free health check. Plain Node.js, no packages.
//   node scripts/seller-api.mjs [PORT]     (0 or none: a free port, printed)
import http from 'node:http';

const port = Number(process.argv[2] ?? 0);
const articles = ['The penny that crossed the sea', 'Channels, not tolls', 'Per-request pricing'];

http
  .createServer((req, res) => {
    const paid = req.headers['x-farthing-paid'] ?? 'nothing';
    const send = (status, type, body) => {
      res.writeHead(status, { 'content-type': type });
      res.end(body);
    };
    const article = /^\/articles\/(\d+)$/.exec(req.url);
    if (req.url === '/health') return send(200, 'text/plain', 'ok\n');
    if (req.url === '/data')
      return send(200, 'application/json', JSON.stringify({ temperature_c: 21.5, paid }) + '\n');
    if (article) {
      const n = Number(article[1]);
      return send(200, 'text/plain', `#${n}: ${articles[n % articles.length]} (paid ${paid} USDC)\n`);
    }
    send(404, 'text/plain', 'no such page\n');
  })
  .listen(port, '127.0.0.1', function () {
    console.log(`seller API on http://127.0.0.1:${this.address().port}`);
  });
