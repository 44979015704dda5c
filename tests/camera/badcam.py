#!/usr/bin/python3
"""A fake RTSP camera that misbehaves on purpose (loopback only).

    python3 tests/camera/badcam.py --port 9554 --mode badrtp

Prints "READY rtsp://127.0.0.1:PORT/bad" once listening, serves every
connection in its own thread until SIGTERM.

Modes:
  garbage    answers every request with random binary bytes, then closes
  truncated  answers with half a status line/header block, then closes
  hugelen    DESCRIBE answers 200 with Content-Length: 2000000000 and then
             trickles a little body (the client must not allocate/wait forever)
  badsdp     a well-formed RTSP exchange whose SDP is nonsense
  badrtp     a valid RTSP/SDP (H.264) handshake; after PLAY, interleaved
             frames with huge lengths, wrong channels, invalid RTP headers and
             inconsistent FU-A fragments (UDP clients get junk datagrams)
  junk       valid handshake; after PLAY, random bytes that are not even
             interleaved frames (or random datagrams for UDP)
  404        every request gets 404 Not Found
  401        every request gets 401 with a Digest challenge, credentials or not
  silent     accepts TCP connections and never answers
  tsjump     a well-behaved H.264 camera (tests/data/h264_320x240_25fps.h264
             looped at 25 fps in real time, keyframe every second) whose RTP
             timestamps misbehave on a schedule given by --jumps, a comma
             separated list of SECONDS:KIND (seconds after PLAY):
               outlier  one frame 1 h ahead, the next ones normal again
               ahead    every later frame 1 h ahead (a lasting jump)
               back     every later frame 1 h back
               drop     the next 4 RTP packets are not sent (a lost run)
             e.g. --jumps 3:outlier,6:back,9:drop
  nokey      the tsjump camera (no timestamp faults) that stops sending
             keyframes: from --nokey START:SECONDS (seconds after PLAY) it
             sends only the clip's P-frames for SECONDS, each grown to --pad
             bytes with a filler data NAL unit (H.264 7.3.2.7; decoders skip
             it) so the bitrate is high (--pad 100000 at 25 fps is 2.5 MB/s),
             then the clip again from its keyframe
  flap       a camera that keeps dropping: each connection gets a valid
             handshake, --frames frames of the clip in real time (from its
             keyframe), then the camera closes the connection. Prints
             "badcam: connection N" for each PLAY
"""

import argparse
import base64
import os
import random
import re
import signal
import socket
import socketserver
import struct
import sys
import threading
import time

MODES = ("garbage", "truncated", "hugelen", "badsdp", "badrtp", "junk", "404", "401", "silent", "tsjump",
         "nokey", "flap")
CLIP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "h264_320x240_25fps.h264")
HOUR90 = 3600 * 90000


def load_aus(path):
    """The clip's access units, each a list of NAL units (no start codes):
    a parameter set or a slice after a slice starts a new one (the clip has
    one slice per picture)."""
    data = open(path, "rb").read()
    starts = [m.end() for m in re.finditer(b"\x00\x00\x01", data)]
    nals = []
    for i, st in enumerate(starts):
        end = starts[i + 1] - 3 if i + 1 < len(starts) else len(data)
        nal = data[st:end]
        while nal.endswith(b"\x00") and i + 1 < len(starts):
            nal = nal[:-1]  # the 4-byte start code's leading zero
        nals.append(nal)
    aus, prev_vcl = [], False
    for n in nals:
        t = n[0] & 0x1F
        vcl = 1 <= t <= 5
        if not aus or t == 7 or (vcl and prev_vcl):
            aus.append([])
        aus[-1].append(n)
        prev_vcl = vcl
    return aus


def parse_jumps(spec):
    out = []
    for item in filter(None, (x.strip() for x in spec.split(","))):
        t, _, kind = item.partition(":")
        if kind not in ("outlier", "ahead", "back", "drop"):
            raise ValueError("unknown jump kind %r" % kind)
        out.append((float(t), kind))
    return sorted(out)

# SPS/PPS of a 640x360 H.264 stream (what x264 produces for testsrc2), so the
# handshake of badrtp/junk is indistinguishable from a real camera's.
SPS = bytes.fromhex("6764001eacb405017fcb80880000030008000003019078b175")
PPS = bytes.fromhex("68ef3cb0")

GOOD_SDP = (
    "v=0\r\n"
    "o=- 1 1 IN IP4 127.0.0.1\r\n"
    "s=badcam\r\n"
    "c=IN IP4 0.0.0.0\r\n"
    "t=0 0\r\n"
    "a=control:*\r\n"
    "m=video 0 RTP/AVP 96\r\n"
    "a=rtpmap:96 H264/90000\r\n"
    "a=fmtp:96 packetization-mode=1;profile-level-id=64001e;sprop-parameter-sets=%s,%s\r\n"
    "a=control:track1\r\n"
) % (base64.b64encode(SPS).decode(), base64.b64encode(PPS).decode())

BAD_SDP = (
    "v=9\r\n"
    "o=\r\n"
    "this line has no equals sign\r\n"
    "m=video notaport RTP/AVP 96 97 98 99 100 101 102 103 104 105 106 107 108 109 110\r\n"
    "a=rtpmap:96 H264/0\r\n"
    "a=rtpmap:97\r\n"
    "a=rtpmap:999999999999999999999 H265/90000/2/3\r\n"
    "a=fmtp:96 packetization-mode=7;sprop-parameter-sets=!!!notbase64,,,;profile-level-id=zz\r\n"
    "a=control:" + "x" * 3000 + "\r\n"
    "m=audio -1 RTP/AVP\r\n"
    "a=rtpmap:0 MPEG4-GENERIC/-5/-1\r\n"
    "a=fmtp:0 config=ZZ;sizelength=99;indexlength=-3\r\n"
    "m=\r\n"
    "\x00\x01\x02\r\n"
)


class Conn(socketserver.BaseRequestHandler):
    mode = "garbage"
    jumps = []
    aus = []
    frames = 5
    plays = 0
    lock = threading.Lock()

    def setup(self):
        self.request.settimeout(1.0)
        self.buf = b""
        self.stop = threading.Event()
        self.session = "%08d" % random.randint(0, 99999999)
        self.udp_peer = None
        self.interleaved = None
        self.sender = None

    # -- I/O helpers -------------------------------------------------------
    def recv_more(self):
        while not self.server.stopping.is_set():
            try:
                data = self.request.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return False
            if not data:
                return False
            self.buf += data
            return True
        return False

    def read_request(self):
        """Returns (method, headers) or None on EOF. Skips interleaved
        frames the client sends (RTCP receiver reports)."""
        while True:
            while self.buf[:1] == b"$":
                if len(self.buf) < 4:
                    if not self.recv_more():
                        return None
                    continue
                n = struct.unpack(">H", self.buf[2:4])[0]
                if len(self.buf) < 4 + n:
                    if not self.recv_more():
                        return None
                    continue
                self.buf = self.buf[4 + n:]
            end = self.buf.find(b"\r\n\r\n")
            if end >= 0 and self.buf[:1] != b"$":
                head = self.buf[:end].decode("latin-1")
                self.buf = self.buf[end + 4:]
                lines = head.split("\r\n")
                method = lines[0].split(" ")[0]
                headers = {}
                for ln in lines[1:]:
                    k, _, v = ln.partition(":")
                    headers[k.strip().lower()] = v.strip()
                clen = int(headers.get("content-length", "0") or 0)
                while len(self.buf) < clen:
                    if not self.recv_more():
                        return None
                self.buf = self.buf[clen:]
                return method, headers
            if len(self.buf) > 1 << 20:
                return None
            if not self.recv_more():
                return None

    def send(self, data):
        try:
            self.request.sendall(data)
            return True
        except OSError:
            return False

    def reply(self, h, status="200 OK", extra="", body=""):
        msg = "RTSP/1.0 %s\r\nCSeq: %s\r\nServer: badcam\r\n%s" % (status, h.get("cseq", "0"), extra)
        if body:
            msg += "Content-Length: %d\r\n" % len(body.encode("latin-1"))
        msg += "\r\n" + body
        return self.send(msg.encode("latin-1"))

    # -- modes -------------------------------------------------------------
    def handle(self):
        try:
            self.serve()
        finally:
            self.stop.set()
            if self.sender:
                self.sender.join(2)

    def serve(self):
        mode = self.mode
        if mode == "silent":
            while self.recv_more():
                self.buf = b""
            return
        while True:
            req = self.read_request()
            if req is None:
                return
            method, h = req
            if mode == "garbage":
                self.send(os.urandom(4096))
                return
            if mode == "truncated":
                self.send(("RTSP/1.0 200 OK\r\nCSeq: %s\r\nPubl" % h.get("cseq", "0")).encode())
                return
            if mode == "404":
                self.reply(h, "404 Not Found")
                continue
            if mode == "401":
                self.reply(h, "401 Unauthorized",
                           'WWW-Authenticate: Digest realm="badcam", nonce="%s"\r\n' % os.urandom(8).hex())
                continue
            if method == "OPTIONS":
                self.reply(h, extra="Public: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER\r\n")
            elif method == "DESCRIBE":
                if mode == "hugelen":
                    self.send(("RTSP/1.0 200 OK\r\nCSeq: %s\r\nContent-Type: application/sdp\r\n"
                               "Content-Length: 2000000000\r\n\r\n" % h.get("cseq", "0")).encode())
                    # trickle a bounded amount of body, then hold the line
                    for _ in range(64):
                        if self.stop.is_set() or not self.send(b"a=x\r\n" * 200):
                            return
                        time.sleep(0.05)
                    while self.recv_more():
                        self.buf = b""
                    return
                sdp = BAD_SDP if mode == "badsdp" else GOOD_SDP
                if mode in ("tsjump", "nokey", "flap"):
                    sps, pps = self.aus[0][0], self.aus[0][1]
                    sdp = GOOD_SDP.replace("64001e", sps[1:4].hex()).replace(
                        "sprop-parameter-sets=%s,%s" % (base64.b64encode(SPS).decode(), base64.b64encode(PPS).decode()),
                        "sprop-parameter-sets=%s,%s" % (base64.b64encode(sps).decode(), base64.b64encode(pps).decode()))
                base = "Content-Base: rtsp://127.0.0.1:%d/bad/\r\nContent-Type: application/sdp\r\n" % (
                    self.server.server_address[1])
                self.reply(h, extra=base, body=sdp)
            elif method == "SETUP":
                tr = h.get("transport", "")
                if "interleaved" in tr or "TCP" in tr:
                    m = re.search(r"interleaved=(\d+)", tr)
                    ch = int(m.group(1)) if m else 0
                    self.interleaved = ch
                    t = "RTP/AVP/TCP;unicast;interleaved=%d-%d" % (ch, ch + 1)
                else:
                    m = re.search(r"client_port=(\d+)", tr)
                    if not m:
                        self.reply(h, "461 Unsupported Transport")
                        continue
                    self.udp_peer = ("127.0.0.1", int(m.group(1)))
                    t = "RTP/AVP;unicast;client_port=%s;server_port=40000-40001;ssrc=1234ABCD" % (
                        m.group(1) + "-" + str(int(m.group(1)) + 1))
                self.reply(h, extra="Transport: %s\r\nSession: %s;timeout=60\r\n" % (t, self.session))
            elif method == "PLAY":
                self.reply(h, extra="Session: %s\r\nRange: npt=0.000-\r\nRTP-Info: url=track1;seq=1;rtptime=0\r\n"
                           % self.session)
                if self.sender is None:
                    target = self.send_stream if mode in ("tsjump", "nokey", "flap") else self.send_media
                    if mode == "flap":
                        with Conn.lock:
                            Conn.plays += 1
                            print("badcam: connection %d" % Conn.plays, file=sys.stderr, flush=True)
                    self.sender = threading.Thread(target=target, daemon=True)
                    self.sender.start()
            elif method == "TEARDOWN":
                self.reply(h, extra="Session: %s\r\n" % self.session)
                return
            else:  # GET_PARAMETER, SET_PARAMETER, ...
                self.reply(h, extra="Session: %s\r\n" % self.session)

    def bad_packets(self, i):
        """The i-th broken payload (bytes as they go on the wire for TCP)."""
        ch = self.interleaved or 0
        kind = i % 8
        if kind == 0:  # huge interleaved length, short data
            return b"$" + bytes([ch]) + b"\xff\xff" + os.urandom(100)
        if kind == 1:  # wrong channel
            return b"$" + bytes([(ch + 7) % 256]) + struct.pack(">H", 200) + os.urandom(200)
        if kind == 2:  # RTP version 0
            pkt = b"\x00\x60" + os.urandom(300)
        elif kind == 3:  # FU-A middle fragment without a start
            pkt = struct.pack(">BBHII", 0x80, 96, i & 0xFFFF, i * 3600, 0x1234ABCD) + b"\x7c\x05" + os.urandom(500)
        elif kind == 4:  # header extension/CSRC counts pointing past the end
            pkt = struct.pack(">BBHII", 0x9F, 96, i & 0xFFFF, i * 3600, 0x1234ABCD) + b"\x00"
        elif kind == 5:  # padding larger than the packet
            pkt = struct.pack(">BBHII", 0xA0, 96, i & 0xFFFF, i * 3600, 0x1234ABCD) + b"\x65\x88" + b"\xff"
        elif kind == 6:  # STAP-A with NAL sizes beyond the packet
            pkt = struct.pack(">BBHII", 0x80, 0xE0, i & 0xFFFF, i * 3600, 0x1234ABCD) + b"\x18\xff\xf0\x67"
        else:  # zero-length interleaved frame
            return b"$" + bytes([ch]) + b"\x00\x00"
        return b"$" + bytes([ch]) + struct.pack(">H", len(pkt)) + pkt

    def send_media(self):
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM) if self.udp_peer else None
        i = 0
        deadline = time.monotonic() + 600
        try:
            while not self.stop.is_set() and not self.server.stopping.is_set() and time.monotonic() < deadline:
                if self.mode == "junk":
                    data = os.urandom(random.randint(1, 1400))
                else:
                    data = self.bad_packets(i)
                if udp:
                    try:
                        udp.sendto(data[4:] if data[:1] == b"$" else data, self.udp_peer)
                    except OSError:
                        pass
                elif not self.send(data):
                    return
                i += 1
                time.sleep(0.01)
        finally:
            if udp:
                udp.close()


    def rtp_packets(self, au, ts, seq):
        """RFC 6184 packets of one access unit: single NAL units, FU-A for
        the large ones; the marker on the last one."""
        out = []
        for k, nal in enumerate(au):
            last = k + 1 == len(au)
            if len(nal) <= 1400:
                frags = [(nal, last)]
            else:
                hdr, body, frags = nal[0], nal[1:], []
                pos = 0
                while pos < len(body):
                    chunk = body[pos:pos + 1398]
                    s_bit = 0x80 if pos == 0 else 0
                    pos += len(chunk)
                    e_bit = 0x40 if pos >= len(body) else 0
                    fu = bytes([(hdr & 0xE0) | 28, s_bit | e_bit | (hdr & 0x1F)]) + chunk
                    frags.append((fu, last and e_bit))
            for payload, marker in frags:
                out.append(struct.pack(">BBHII", 0x80, (0x80 if marker else 0) | 96, seq & 0xFFFF,
                                       ts & 0xFFFFFFFF, 0x1234ABCD) + payload)
                seq += 1
        return out, seq

    def send_stream(self):
        """tsjump: the clip in real time with the scheduled timestamp faults."""
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM) if self.udp_peer else None
        ch = self.interleaved or 0
        t0 = time.monotonic()
        pending = list(self.jumps)
        offset, seq, drop, n = 0, 1, 0, 0
        nk_start, nk_len = self.nokey
        nk_from, nk_to = int(nk_start * 25), int((nk_start + nk_len) * 25)
        keys = [i for i, au in enumerate(self.aus) if any((x[0] & 0x1F) == 5 for x in au)]
        pframes = [i for i in range(len(self.aus)) if i not in keys]
        k = 0  # the clip's position (restarts at its keyframe after the no-key stretch)
        try:
            limit = self.frames if self.mode == "flap" else 25 * 600
            while not self.stop.is_set() and not self.server.stopping.is_set() and n < limit:
                at = t0 + n * 0.04
                now = time.monotonic()
                if at > now:
                    time.sleep(at - now)
                extra = 0
                while pending and pending[0][0] <= n * 0.04:
                    kind = pending.pop(0)[1]
                    if kind == "outlier":
                        extra = HOUR90
                    elif kind == "ahead":
                        offset += HOUR90
                    elif kind == "back":
                        offset -= HOUR90
                    else:
                        drop = 4
                    print("badcam: frame %d: %s" % (n, kind), file=sys.stderr, flush=True)
                ts = 12345 + n * 3600 + offset + extra
                au = self.aus[k % len(self.aus)]
                k += 1
                if nk_from <= n < nk_to:
                    au = self.aus[pframes[n % len(pframes)]]
                    fill = max(0, self.pad - sum(len(x) for x in au) - 2)
                    au = au + [b"\x0c" + b"\xff" * fill + b"\x80"]  # filler data NAL
                    k = 0
                    if n == nk_from or n + 1 == nk_to:
                        print("badcam: frame %d: %s" % (n, "no keyframes" if n == nk_from else "keyframes again"),
                              file=sys.stderr, flush=True)
                pkts, seq = self.rtp_packets(au, ts, seq)
                for pkt in pkts:
                    if drop:
                        drop -= 1
                        continue
                    if udp:
                        try:
                            udp.sendto(pkt, self.udp_peer)
                        except OSError:
                            pass
                    elif not self.send(b"$" + bytes([ch]) + struct.pack(">H", len(pkt)) + pkt):
                        return
                n += 1
        finally:
            if udp:
                udp.close()
            if self.mode == "flap":  # the camera drops the connection
                try:
                    self.request.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


def main(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, default=9554)
    p.add_argument("--mode", choices=MODES, required=True)
    p.add_argument("--jumps", default="", help="tsjump: SECONDS:KIND,... (see above)")
    p.add_argument("--nokey", default="0:0", help="nokey: START:SECONDS without keyframes")
    p.add_argument("--frames", type=int, default=5, help="flap: frames sent per connection")
    p.add_argument("--pad", type=int, default=100000, help="nokey: bytes of each frame without keyframes")
    a = p.parse_args(argv)

    Conn.mode = a.mode
    Conn.nokey = (0.0, 0.0)
    Conn.pad = a.pad
    Conn.frames = a.frames
    if a.mode in ("tsjump", "nokey", "flap"):
        try:
            Conn.jumps = parse_jumps(a.jumps)
            st, _, ln = a.nokey.partition(":")
            Conn.nokey = (float(st), float(ln)) if a.mode == "nokey" else (0.0, 0.0)
        except ValueError as e:
            p.error(str(e))
        Conn.aus = load_aus(CLIP)
    srv = Server(("127.0.0.1", a.port), Conn)
    srv.stopping = threading.Event()

    def on_term(_sig, _frm):
        srv.stopping.set()
        threading.Thread(target=srv.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    print("READY rtsp://127.0.0.1:%d/bad" % srv.server_address[1], flush=True)
    srv.serve_forever(poll_interval=0.2)
    srv.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
