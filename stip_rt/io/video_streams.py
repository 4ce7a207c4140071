"""Which stream of a media file stip-rt tracks, and whether the file is a video at all.

FFmpeg opens more than videos: its text-art demuxers play any text file as a "video", and an audio
file may carry its cover picture as a one-frame video stream. Of a file's video streams, the one
tracked is FFmpeg's best (as players pick it), never an attached picture. The source
(:mod:`stip_rt.io.video_source`) and the frame-count estimate (:mod:`stip_rt.io.video_seek`) use the
same choice.
"""

from __future__ import annotations

from typing import Any

import av

# FFmpeg demuxers that turn text files into "video" (its text-art renderers: any .txt is a ``tty`` video).
TEXT_FORMATS = frozenset({"tty", "bin", "xbin", "adf", "idf"})


def is_picture(stream: Any) -> bool:
    """True for an attached picture (cover art, a thumbnail): one still image, not a video to track."""
    return bool(stream.disposition & av.stream.Disposition.attached_pic)


def video_stream(container: Any) -> Any:
    """The video stream to track: FFmpeg's best video stream (as players pick it) that is not an attached picture.

    Audio, data and cover-art streams may come before it; of several videos, FFmpeg prefers the
    default one, then the one with more frames probed and the higher bit rate.
    """
    videos = [s for s in container.streams.video if not is_picture(s)] or list(container.streams.video)
    if len(videos) == 1:
        return videos[0]
    try:
        best = container.streams.best("video")
    except (av.FFmpegError, ValueError):
        best = None
    return best if best in videos else videos[0]


def not_a_video(container: Any) -> str:
    """Why an opened container is no video to track (empty: it is one): text, no video stream, or only cover art."""
    formats = set((container.format.name or "").split(","))
    if formats & TEXT_FORMATS:
        return f"FFmpeg reads it as text, with its '{container.format.name}' format"
    if not [s for s in container.streams.video if not is_picture(s)]:
        kinds = sorted({"a cover picture" if is_picture(s) else s.type for s in container.streams})
        return "it has no video stream" + (f", only {' and '.join(kinds)}" if kinds else "")
    return ""
