"""The picture: paints the newest annotated frame, scaled to fit, and nothing else."""

from __future__ import annotations

import numpy as np
from PyQt6.QtCore import QRect, Qt, pyqtSignal
from PyQt6.QtGui import QColor, QImage, QMouseEvent, QPainter, QPaintEvent
from PyQt6.QtWidgets import QSizePolicy, QWidget


def bgr_to_qimage(image: np.ndarray) -> QImage:
    """(H, W, 3) uint8 BGR → a QImage that owns its pixels."""
    h, w = image.shape[:2]
    rgb = np.ascontiguousarray(image[..., ::-1])
    # PyQt6 takes any buffer for the pixels; its stubs say bytes (bytes(...) would copy every frame once more)
    return QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()  # type: ignore[call-overload]


class VideoView(QWidget):
    """Shows one frame at a time, letter-boxed on a dark background, with an optional badge (``● REC``).

    Signals:
        clicked(float, float): a left click on the picture, in the frame's pixels.
    """

    clicked = pyqtSignal(float, float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._image: QImage | None = None
        self._badge = ""
        self._message = "Open a video, a camera or a stream URL (File menu, or drop a file here)"
        self.setMinimumSize(480, 320)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)

    def set_frame(self, image: np.ndarray) -> None:
        self._image = bgr_to_qimage(image)
        self.update()

    def set_message(self, text: str) -> None:
        self._message = text
        self.update()

    def set_badge(self, text: str) -> None:
        """A red label in the top-left corner (empty: none)."""
        self._badge = text
        self.update()

    @property
    def badge(self) -> str:
        return self._badge

    def to_image(self, x: float, y: float) -> tuple[float, float] | None:
        """Widget coordinates → frame pixels (None outside the picture)."""
        rect = self.image_rect()
        if self._image is None or rect.isEmpty() or not rect.contains(int(x), int(y)):
            return None
        sx = self._image.width() / rect.width()
        sy = self._image.height() / rect.height()
        return (x - rect.x()) * sx, (y - rect.y()) * sy

    def mousePressEvent(self, event: QMouseEvent | None) -> None:
        if event is not None and event.button() == Qt.MouseButton.LeftButton:
            p = self.to_image(event.position().x(), event.position().y())
            if p is not None:
                self.clicked.emit(*p)
        super().mousePressEvent(event)

    def clear(self) -> None:
        self._image = None
        self.update()

    def image_rect(self) -> QRect:
        """Where the frame is drawn inside the widget (empty when there is none)."""
        if self._image is None:
            return QRect()
        size = self._image.size().scaled(self.size(), Qt.AspectRatioMode.KeepAspectRatio)
        x = (self.width() - size.width()) // 2
        y = (self.height() - size.height()) // 2
        return QRect(x, y, size.width(), size.height())

    def paintEvent(self, event: QPaintEvent | None) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(24, 24, 28))
        if self._image is None:
            painter.setPen(QColor(170, 170, 180))
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self._message)
        else:
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
            painter.drawImage(self.image_rect(), self._image)
            if self._message and self._message.startswith("Starting"):
                painter.fillRect(0, 0, self.width(), 28, QColor(0, 0, 0, 160))
                painter.setPen(QColor(230, 230, 235))
                painter.drawText(QRect(8, 0, self.width() - 16, 28), Qt.AlignmentFlag.AlignVCenter, self._message)
        if self._badge:
            font = painter.font()
            font.setBold(True)
            painter.setFont(font)
            w = painter.fontMetrics().horizontalAdvance(self._badge) + 16
            painter.fillRect(10, 10, w, 24, QColor(200, 30, 30))
            painter.setPen(QColor(255, 255, 255))
            painter.drawText(QRect(10, 10, w, 24), Qt.AlignmentFlag.AlignCenter, self._badge)
        painter.end()
