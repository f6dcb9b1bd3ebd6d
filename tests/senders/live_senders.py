"""External senders for tests/live_e2e_jack.rs: python-osc, liblo's oscsend and a
python-rtmidi JACK output port drive a running `tapestry play`.

    live_senders.py show    OSC_PORT MIDI_DEST   the scripted show (notes, controls, joins, mood, leaves)
    live_senders.py garbage OSC_PORT MIDI_DEST SECONDS   floods of malformed OSC and MIDI
    live_senders.py once    0 MIDI_DEST          notes from ports tapestry's watcher also listens to

MIDI_DEST is tapestry's virtual JACK MIDI port; our port is connected to it with jack_connect.
Prints one line per action ("t=<seconds> <what>") and the counts at the end.
"""

import os
import random
import socket
import struct
import subprocess
import sys
import time

import rtmidi
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.osc_bundle_builder import OscBundleBuilder, IMMEDIATELY
from pythonosc.udp_client import SimpleUDPClient

MIDI_CHANNEL = 2  # wire value: channel 3, mapped to participant 9 by the test patch


class Midi:
    """A virtual JACK MIDI output port connected to tapestry's virtual input."""

    def __init__(self, dest, client):
        self.out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name=client)
        self.out.open_virtual_port("out")
        source = f"{client}:out"
        for _ in range(100):
            if connect(source, dest):
                break
            time.sleep(0.05)
        else:
            raise SystemExit(f"jack_connect {source} {dest} failed")
        time.sleep(0.2)

    def send(self, message):
        self.out.send_message(message)

    def close(self):
        # an output client that exits without closing makes every client on the server xrun
        self.out.close_port()
        self.out.delete()


def connect(source, dest):
    """jack_connect, under a time limit: a JACK client can get stuck closing (jackaudio/jack2#395)
    after its work is done, so a stuck one counts if the connection is there."""
    try:
        return subprocess.run(["jack_connect", source, dest], timeout=5).returncode == 0
    except subprocess.TimeoutExpired:
        try:
            listing = subprocess.run(["jack_lsp", "-c", source], timeout=5,
                                     capture_output=True, text=True).stdout
        except subprocess.TimeoutExpired:
            return False
        return any(line.startswith((" ", "\t")) and line.strip() == dest
                   for line in listing.splitlines())


def osc_subscribe(osc):
    """The reply handshake: hello with a 64-bit nonce, the cookie back, subscribe with it.
    Returns the subscribe's ack arguments."""
    hello = OscMessageBuilder("/tapestry/hello")
    hello.add_arg(0x5EED, "h")
    osc.send(hello.build())
    reply = next(osc.get_messages(5.0))
    if reply.address != "/tapestry/hello":
        raise SystemExit(f"unexpected reply {reply.address} {reply.params}")
    subscribe = OscMessageBuilder("/tapestry/subscribe")
    subscribe.add_arg(reply.params[0], "h")
    osc.send(subscribe.build())
    return next(osc.get_messages(5.0)).params


def oscsend(port, address, types, *args):
    subprocess.run(["oscsend", "127.0.0.1", str(port), address, types, *map(str, args)], check=True)


def show(osc_port, midi_dest):
    midi = Midi(midi_dest, "e2e-keys")
    osc = SimpleUDPClient("127.0.0.1", osc_port)
    start = time.monotonic()

    def at(t, what, action):
        delay = start + t - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        action()
        print(f"t={time.monotonic() - start:.3f} {what}", flush=True)

    note_on = lambda key: midi.send([0x90 | MIDI_CHANNEL, key, 100])
    note_off = lambda key: midi.send([0x80 | MIDI_CHANNEL, key, 0])
    cc = lambda value: midi.send([0xB0 | MIDI_CHANNEL, 74, value])
    # notes: a free archetype plays them at their own pitch (61 is no tone of the C chord)
    for t, key in [(0.0, 57), (1.2, 61), (2.4, 69)]:
        at(t, f"midi note on {key}", lambda key=key: note_on(key))
        at(t + 1.0, f"midi note off {key}", lambda key=key: note_off(key))
    # a held note while the participant's brightness control moves from 0 to 127
    at(3.6, "midi cc 74 0", lambda: cc(0))
    at(3.6, "midi note on 57", lambda: note_on(57))
    for i, value in enumerate([32, 64, 96, 127]):
        at(4.6 + 0.02 * i, f"midi cc 74 {value}", lambda value=value: cc(value))
    at(5.6, "midi note off 57", lambda: note_off(57))
    # joins through both OSC clients
    at(6.0, "oscsend join 1 pad", lambda: oscsend(osc_port, "/tapestry/join", "is", 1, "pad"))
    # python-osc also asks for replies: the handshake, then the join is acknowledged
    acks = []
    at(6.1, "python-osc hello and subscribe", lambda: acks.append(osc_subscribe(osc)))
    at(6.3, "python-osc join 2 pluck", lambda: osc.send_message("/tapestry/join", [2, "pluck"]))
    at(6.4, "python-osc reads the join's ack",
       lambda: acks.append(next(osc.get_messages(5.0)).params))
    # the room heats up and brightens
    at(8.5, "python-osc mood 0 energy 1.0",
       lambda: osc.send_message("/tapestry/mood", [0, "energy", 1.0]))
    at(8.5, "oscsend mood 0 brightness 1.0",
       lambda: oscsend(osc_port, "/tapestry/mood", "isf", 0, "brightness", 1.0))
    # everybody leaves
    at(10.5, "oscsend leave 1", lambda: oscsend(osc_port, "/tapestry/leave", "i", 1))
    at(10.5, "python-osc leave 2 and 9", lambda: (osc.send_message("/tapestry/leave", [2]),
                                                  osc.send_message("/tapestry/leave", [9])))
    midi.close()
    print(f"python-osc acks {acks}", flush=True)


def osc_garbage(rng):
    """One malformed or unwelcome OSC datagram, and its kind (1 in 50 a huge bundle)."""
    kind = rng.randrange(50)
    kind = 6 if kind == 49 else kind % 6
    if kind == 0:
        return "random", bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200)))
    if kind == 1:
        good = OscMessageBuilder("/tapestry/mood")
        for arg in (0, "energy", 0.5):
            good.add_arg(arg)
        data = good.build().dgram
        return "truncated", data[: rng.randrange(1, len(data))]
    if kind == 2:
        m = OscMessageBuilder("/tapestry/join")
        m.add_arg("not-a-number")
        m.add_arg(3.5)
        return "wrong types", m.build().dgram
    if kind == 3:
        return "unknown address", OscMessageBuilder(f"/tapestry/nothing{rng.randrange(99)}").build().dgram
    if kind == 4:
        m = OscMessageBuilder("/tapestry/note")
        for arg in (rng.randrange(1000, 2000), 60, 100):
            m.add_arg(arg)
        return "unknown participant", m.build().dgram
    if kind == 5:
        m = OscMessageBuilder("/tapestry/mood")
        for arg in (0, "no-such-dimension", 0.5):
            m.add_arg(arg)
        return "unknown name", m.build().dgram
    # a huge bundle of bad messages (just under the UDP limit)
    bundle = OscBundleBuilder(IMMEDIATELY)
    bad = OscMessageBuilder("/tapestry/leave")
    bad.add_arg("x")
    bad = bad.build()
    for _ in range(2000):
        bundle.add_content(bad)
    return "huge bundle", bundle.build().dgram


def midi_garbage(rng):
    """One malformed MIDI message as a port delivers it, and its kind."""
    kind = rng.randrange(7)
    if kind == 0:
        return "stray data", [rng.randrange(0x80), rng.randrange(0x80)]
    if kind == 1:
        return "broken running status", [rng.randrange(0x80)]
    if kind == 2:
        return "truncated note", [0x90 | MIDI_CHANNEL, 60]
    if kind == 3:
        return "undefined status", [rng.choice([0xF4, 0xF5, 0xF7])]
    if kind == 4:
        return "unterminated sysex", [0xF0] + [rng.randrange(0x80) for _ in range(rng.randrange(1, 12))]
    if kind == 5:
        return "long sysex", [0xF0] + [rng.randrange(0x80) for _ in range(300)]
    return "status inside sysex", [0xF0, 0x7D, 0x90, 60, 100, 0xF7]


def garbage(osc_port, midi_dest, seconds):
    rng = random.Random(7)
    midi = Midi(midi_dest, "e2e-garbage")
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setblocking(False)
    counts = {}
    osc_sent = midi_sent = 0
    pool = [osc_garbage(rng) for _ in range(500)]
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        for _ in range(40):
            kind, data = pool[osc_sent % len(pool)]
            try:
                sock.sendto(data, ("127.0.0.1", osc_port))
                osc_sent += 1
                counts["osc " + kind] = counts.get("osc " + kind, 0) + 1
            except BlockingIOError:
                pass
        for _ in range(4):
            kind, message = midi_garbage(rng)
            midi.send(message)
            midi_sent += 1
            counts["midi " + kind] = counts.get("midi " + kind, 0) + 1
        # drain acks so the socket buffer never fills
        try:
            while sock.recv(65536):
                pass
        except BlockingIOError:
            pass
        time.sleep(0.01)
    elapsed = time.monotonic() - start
    midi.close()
    for kind in sorted(counts):
        print(f"{kind}: {counts[kind]}")
    print(f"osc datagrams {osc_sent} ({osc_sent / elapsed:.0f}/s), midi messages {midi_sent} "
          f"({midi_sent / elapsed:.0f}/s)", flush=True)


def connections(port):
    """The ports `port` is connected to (jack_lsp -c), or None when jack_lsp got stuck."""
    try:
        listing = subprocess.run(["jack_lsp", "-c", port], timeout=5,
                                 capture_output=True, text=True).stdout
    except subprocess.TimeoutExpired:
        return None
    return [l.strip() for l in listing.splitlines() if l.startswith((" ", "\t"))]


def wait_connected(port, count, seconds=10):
    """Waits until `port` has `count` connections (tapestry's watcher connects every port)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = connections(port)
        if found is not None and len(found) >= count:
            return found
        time.sleep(0.05)
    raise SystemExit(f"{port} never had {count} connections: {connections(port)}")


def once(midi_dest):
    """Two ports that tapestry's watcher listens to (`ports = ["*"]`) and that are also
    connected to its virtual port, as a performer following the README would: "early" is
    connected to the virtual port as soon as it exists, "late" after the watcher has connected
    it. Each note must arrive once. Then "late" leaves the virtual port and must be heard
    directly. Channel 1 plays on "late", channel 2 on "early"."""
    late = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name="once-late")
    late.open_virtual_port("out")
    early = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name="once-early")
    early.open_virtual_port("out")
    if not connect("once-early:out", midi_dest):
        raise SystemExit("jack_connect once-early:out failed")
    print(f"watcher connected once-late:out: {wait_connected('once-late:out', 1)}", flush=True)
    if not connect("once-late:out", midi_dest):
        raise SystemExit("jack_connect once-late:out failed")
    wait_connected("once-early:out", 2)
    time.sleep(0.5)
    sent = 0

    def play(out, channel, keys):
        nonlocal sent
        for key in keys:
            out.send_message([0x90 | channel, key, 100])
            time.sleep(0.12)
            out.send_message([0x80 | channel, key, 0])
            time.sleep(0.08)
            sent += 2
        print(f"played channel {channel + 1}: {' '.join(map(str, keys))}", flush=True)

    play(late, 0, [60, 64, 67, 72])
    play(early, 1, [55, 59, 62])
    # SysEx on both sides of the 16 bytes a port callback copies: counted once, never lost
    for length in [16, 17, 1000, 4096]:
        late.send_message([0xF0] + [0x11] * (length - 2) + [0xF7])
        sent += 1
        time.sleep(0.02)
    subprocess.run(["jack_disconnect", "once-late:out", midi_dest], timeout=5, check=True)
    time.sleep(0.5)
    play(late, 0, [65, 69])
    print(f"midi messages {sent}", flush=True)
    for out in (late, early):
        out.close_port()
        out.delete()


if __name__ == "__main__":
    command, osc_port, midi_dest = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    if command == "show":
        show(osc_port, midi_dest)
    elif command == "garbage":
        garbage(osc_port, midi_dest, float(sys.argv[4]))
    elif command == "once":
        once(midi_dest)
    else:
        raise SystemExit(f"unknown command {command}")
    # the tests accept a run that gets stuck after this line: python-rtmidi's JACK client can
    # hang closing at exit (jackaudio/jack2#395)
    print("senders done", flush=True)
