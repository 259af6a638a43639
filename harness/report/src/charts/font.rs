//! The one font of the PNG charts: DejaVu Sans, read from the system at run time and
//! registered with plotters once per process (SVG charts name `sans-serif` and leave the font
//! to the viewer).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::style::FontStyle;

/// Where Debian's `fonts-dejavu-core` installs DejaVu Sans.
pub const DEJAVU_SANS: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

/// The Debian package that provides [`DEJAVU_SANS`].
pub const FONT_PACKAGE: &str = "fonts-dejavu-core";

/// The font family every chart's text uses.
pub(crate) const FAMILY: &str = "sans-serif";

/// Why the PNG font could not be set up.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FontError {
    /// The font file could not be read.
    #[error(
        "cannot read the PNG charts' font {path}: {why} (install the Debian package \
         {FONT_PACKAGE}, or write SVG charts only: report --no-png)"
    )]
    Missing {
        /// The font file.
        path: PathBuf,
        /// The I/O error.
        why: String,
    },
    /// The file is not a TrueType or OpenType font.
    #[error(
        "{path} is not a TrueType/OpenType font (reinstall the Debian package {FONT_PACKAGE})"
    )]
    Invalid {
        /// The font file.
        path: PathBuf,
    },
}

/// Registers [`DEJAVU_SANS`] as the charts' font, once per process; later calls return the
/// first call's outcome.
pub fn ensure_registered() -> Result<(), FontError> {
    static REGISTERED: OnceLock<Result<(), FontError>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| register(Path::new(DEJAVU_SANS)))
        .clone()
}

/// Reads the font at `path` and registers it as [`FAMILY`].
fn register(path: &Path) -> Result<(), FontError> {
    let bytes = read(path)?;
    // plotters keeps registered fonts for the life of the process and needs them 'static: the
    // one font (~750 KB) is leaked once, guarded by `ensure_registered`'s OnceLock.
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    plotters::style::register_font(FAMILY, FontStyle::Normal, bytes).map_err(|_| {
        FontError::Invalid {
            path: path.to_path_buf(),
        }
    })
}

/// The bytes of the font file at `path`.
fn read(path: &Path) -> Result<Vec<u8>, FontError> {
    std::fs::read(path).map_err(|e| FontError::Missing {
        path: path.to_path_buf(),
        why: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_font_names_the_package() {
        let e = read(Path::new("/nonexistent/DejaVuSans.ttf")).unwrap_err();
        let text = e.to_string();
        assert!(text.contains(FONT_PACKAGE), "{text}");
        assert!(text.contains("/nonexistent/DejaVuSans.ttf"), "{text}");
    }

    #[test]
    fn a_file_that_is_no_font_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("not-a-font.ttf");
        std::fs::write(&path, b"hello").unwrap();
        let e = register(&path).unwrap_err();
        assert_eq!(e, FontError::Invalid { path });
    }

    #[test]
    fn the_system_font_registers() {
        assert_eq!(ensure_registered(), Ok(()));
        assert_eq!(ensure_registered(), Ok(()));
    }
}
