//! The SVG backend the charts draw on: plotters' own, except that text is measured with a
//! fallback estimate when no font is registered, so SVG charts need no font on the machine
//! (the viewer renders the `<text>` elements with its own sans-serif).

use plotters::prelude::SVGBackend;
use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingBackend, DrawingErrorKind,
};

/// Average advance of a sans-serif glyph, in font sizes (DejaVu Sans averages ~0.55).
const GLYPH_WIDTH: f64 = 0.6;

/// plotters' [`SVGBackend`] with font-independent text measurement.
pub(crate) struct SvgText<'a>(pub(crate) SVGBackend<'a>);

/// The estimated size of `text` at font size `size`, in pixels.
pub(crate) fn estimate(text: &str, size: f64) -> (u32, u32) {
    let width = text.chars().count() as f64 * size * GLYPH_WIDTH;
    (width.ceil() as u32, (size / 1.24).ceil() as u32)
}

impl DrawingBackend for SvgText<'_> {
    type ErrorType = <SVGBackend<'static> as DrawingBackend>::ErrorType;

    fn get_size(&self) -> (u32, u32) {
        self.0.get_size()
    }

    fn ensure_prepared(&mut self) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.ensure_prepared()
    }

    fn present(&mut self) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.present()
    }

    fn draw_pixel(
        &mut self,
        point: BackendCoord,
        color: BackendColor,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.draw_pixel(point, color)
    }

    fn draw_line<S: BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.draw_line(from, to, style)
    }

    fn draw_rect<S: BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.draw_rect(upper_left, bottom_right, style, fill)
    }

    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.draw_path(path, style)
    }

    fn draw_circle<S: BackendStyle>(
        &mut self,
        center: BackendCoord,
        radius: u32,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.draw_circle(center, radius, style, fill)
    }

    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.fill_polygon(vert, style)
    }

    fn draw_text<S: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &S,
        pos: BackendCoord,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.draw_text(text, style, pos)
    }

    fn estimate_text_size<S: BackendTextStyle>(
        &self,
        text: &str,
        style: &S,
    ) -> Result<(u32, u32), DrawingErrorKind<Self::ErrorType>> {
        Ok(self
            .0
            .estimate_text_size(text, style)
            .unwrap_or_else(|_| estimate(text, style.size())))
    }

    fn blit_bitmap(
        &mut self,
        pos: BackendCoord,
        size: (u32, u32),
        src: &[u8],
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.blit_bitmap(pos, size, src)
    }
}

#[cfg(test)]
mod tests {
    use plotters::prelude::*;

    use super::*;

    #[test]
    fn text_is_measured_without_a_font() {
        let mut svg = String::new();
        {
            let root = SvgText(SVGBackend::with_string(&mut svg, (200, 100))).into_drawing_area();
            // A family nobody registers: plotters cannot measure it, the estimate does.
            let style = TextStyle::from(("no-such-font-family", 20).into_font());
            let (w, h) = root.estimate_text_size("hello", &style).unwrap();
            assert_eq!((w, h), estimate("hello", 20.0));
            assert!(w > 40 && h > 10, "{w} x {h}");
            root.draw(&Text::new("hello", (10, 10), style)).unwrap();
            root.present().unwrap();
        }
        assert!(svg.contains("<text") && svg.contains("hello"), "{svg}");
    }
}
