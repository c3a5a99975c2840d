"""A real SMTP server for the alert tests (aiosmtpd from Debian's python3-aiosmtpd).

Writes each accepted message to DIR/<n>.eml. If DIR/delay exists (seconds), DATA is held that long before it is answered (and
DIR/delaying is created when a DATA is held). If DIR/reply exists, its first line
("451 4.3.0 try later") is answered to DATA instead of accepting. Prints "READY <port>"
once listening. Options: --auth USER:PASS (AUTH LOGIN/PLAIN required),
--starttls CERT KEY (offer STARTTLS; required with --auth).
"""
import argparse
import asyncio
import os
import signal
import ssl
import sys
import json
import threading
from email import policy
from email.parser import BytesParser

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Handler:
    def __init__(self, out):
        self.out = out
        # a restarted server on the same directory continues the numbering
        self.n = len([f for f in os.listdir(out) if f.endswith(".eml")])
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        delay = os.path.join(self.out, "delay")
        if os.path.exists(delay):
            with open(delay) as f:
                secs = float(f.read().strip() or "0")
            with open(os.path.join(self.out, "delaying"), "w") as f:
                f.write("1")
            await asyncio.sleep(secs)
        reply = os.path.join(self.out, "reply")
        if os.path.exists(reply):
            with open(reply) as f:
                line = f.readline().strip()
            if line:
                return line
        with self.lock:
            self.n += 1
            n = self.n
        tmp = os.path.join(self.out, f".{n}.tmp")
        with open(tmp, "wb") as f:
            f.write(b"X-Envelope-To: " + ",".join(envelope.rcpt_tos).encode() + b"\r\n")
            f.write(envelope.original_content)
        msg = BytesParser(policy=policy.default).parsebytes(envelope.original_content)
        text = msg.get_body(("plain",))
        html = msg.get_body(("html",))
        parsed = {
            "envelopeTo": envelope.rcpt_tos,
            "from": str(msg["from"]),
            "to": str(msg["to"]),
            "subject": str(msg["subject"]),
            "messageId": str(msg["message-id"]),
            "alertId": str(msg["x-keepwire-alert-id"]),
            "text": text.get_content() if text else None,
            "html": html.get_content() if html else None,
            "tls": session.ssl is not None,
            "auth": session.authenticated,
        }
        with open(tmp + "j", "w") as f:
            json.dump(parsed, f)
        os.rename(tmp + "j", os.path.join(self.out, f"{n:06d}.json"))
        os.rename(tmp, os.path.join(self.out, f"{n:06d}.eml"))
        return "250 2.0.0 OK queued as %d" % n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--auth")
    ap.add_argument("--starttls", nargs=2)
    a = ap.parse_args()
    kw = {}
    if a.starttls:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(a.starttls[0], a.starttls[1])
        kw["tls_context"] = ctx
        kw["require_starttls"] = bool(a.auth)
    if a.auth:
        user, pw = a.auth.split(":", 1)

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = isinstance(auth_data, LoginPassword) and auth_data.login.decode() == user \
                and auth_data.password.decode() == pw
            return AuthResult(success=ok, handled=False)

        kw["authenticator"] = authenticator
        kw["auth_required"] = True
        kw["auth_require_tls"] = bool(a.starttls)
    port = a.port
    if port == 0:
        import socket
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
    c = Controller(Handler(a.dir), hostname="127.0.0.1", port=port, **kw)
    c.start()
    print(f"READY {port}", flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
    c.stop()


if __name__ == "__main__":
    main()
