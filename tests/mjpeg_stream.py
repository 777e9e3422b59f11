"""A real MJPEG-over-HTTP camera on loopback for the live-stream tests.

Each connection gets its own stream of numbered frames, paced at ``fps`` from the moment it
connects: ``multipart/x-mixed-replace`` parts of JPEG images, as IP cameras serve them. The
frame number is drawn into the image as 16 black or white blocks, so a test can read back
from a kept JPEG which frame it is. The server logs the wall-clock time each frame was
written to the socket. ``drop_after`` cuts every connection after that many frames (a camera
that drops); ``stall_after`` stops sending without closing (a camera that hangs).
"""

from __future__ import annotations

import http.server
import threading
import time

import cv2
import numpy as np

BLOCK = 16


def numbered_frame(k: int, size: tuple[int, int] = (320, 240)) -> np.ndarray:
    """A BGR frame whose top two block rows spell ``k`` in 16 bits (white = 1), over a changing scene."""
    w, h = size
    image = np.full((h, w, 3), 60, np.uint8)
    cv2.circle(image, ((k * 7) % w, h // 2 + 20), 30, (40, 180, 220), -1)
    for bit in range(16):
        row, col = divmod(bit, 8)
        value = 255 if (k >> bit) & 1 else 0
        image[row * BLOCK : (row + 1) * BLOCK, col * BLOCK : (col + 1) * BLOCK] = value
    return image


def read_number(image: np.ndarray) -> int:
    """The frame number :func:`numbered_frame` drew into ``image`` (read from each block's centre)."""
    k = 0
    for bit in range(16):
        row, col = divmod(bit, 8)
        y, x = row * BLOCK + BLOCK // 2, col * BLOCK + BLOCK // 2
        if image[y - 2 : y + 3, x - 2 : x + 3].mean() > 127:
            k |= 1 << bit
    return k


class MjpegCamera:
    """Serve numbered MJPEG frames over HTTP on 127.0.0.1 (one server thread per connection)."""

    def __init__(
        self,
        fps: float,
        frames: int,
        *,
        size: tuple[int, int] = (320, 240),
        drop_after: int | None = None,
        stall_after: int | None = None,
    ) -> None:
        self.fps, self.frames, self.size = fps, frames, size
        self.drop_after, self.stall_after = drop_after, stall_after
        self._jpegs: dict[int, bytes] = {}
        self.sent: list[list[float]] = []  # per connection: the time each frame was written
        self.closed = threading.Event()
        camera = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                camera.serve(self)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/cam.mjpg"

    def serve(self, handler: http.server.BaseHTTPRequestHandler) -> None:
        sent: list[float] = []
        self.sent.append(sent)
        handler.send_response(200)
        handler.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
        handler.end_headers()
        start = time.monotonic()
        last = self.frames if self.drop_after is None else min(self.frames, self.drop_after)
        for k in range(last):
            if self.stall_after is not None and k >= self.stall_after:
                self.closed.wait(60)
                return
            data = self.jpeg(k)
            part = b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(data)
            sent.append(time.time())  # before the write: a frame counts as sent once it may be on the wire
            try:
                handler.wfile.write(part + data + b"\r\n")
                handler.wfile.flush()
            except OSError:
                return
            wait = start + (k + 1) / self.fps - time.monotonic()
            if wait > 0:
                time.sleep(wait)

    def jpeg(self, k: int) -> bytes:
        """Frame ``k`` as JPEG bytes (encoded once, when first sent)."""
        if k not in self._jpegs:
            self._jpegs[k] = cv2.imencode(".jpg", numbered_frame(k, self.size))[1].tobytes()
        return self._jpegs[k]

    def behind(self, k: int, at: float, connection: int = 0) -> float:
        """Seconds by which frame ``k`` was out of date at epoch time ``at``: how long before ``at``
        the camera had sent frame ``k + 1`` (0 when it had not sent it yet)."""
        sent = self.sent[connection]
        return max(0.0, at - sent[k + 1]) if k + 1 < len(sent) else 0.0

    def __enter__(self) -> MjpegCamera:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.closed.set()
        self.server.shutdown()
        self.server.server_close()
