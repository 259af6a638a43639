//! The guest images a run boots: the embedded guests (`pageflip_workloads`), written once per
//! invocation into a directory, and any images a tool generates beside them (conform's bad
//! ELF images).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// The guests `pageflip_workloads` embeds.
pub fn guests() -> impl Iterator<Item = &'static str> {
    pageflip_workloads::names()
}

/// The guest image of one VM of a case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Image {
    /// An embedded guest, by name (one of [`guests`]).
    Guest(&'static str),
    /// An image a tool generated under this name ([`ImageSet::add`]).
    Generated(&'static str),
    /// A path where no file exists.
    Missing,
}

/// Why the images could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// This build of conform does not embed a guest.
    #[error(
        "guest image `{0}` is not embedded in this build (pageflip_workloads::image returned None)"
    )]
    NotEmbedded(&'static str),
    /// Writing a file failed.
    #[error("cannot write guest image {path}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
}

/// Images written to a directory, by [`Image`].
#[derive(Debug)]
pub struct ImageSet {
    dir: PathBuf,
}

impl ImageSet {
    /// The image paths in `dir`, without writing anything there.
    pub fn at(dir: &Path) -> ImageSet {
        ImageSet {
            dir: dir.to_path_buf(),
        }
    }

    /// Writes every embedded guest into `dir` (which must exist), and makes sure the
    /// [`Image::Missing`] file is not there.
    pub fn write(dir: &Path) -> Result<ImageSet, ImageError> {
        let set = ImageSet::at(dir);
        for name in guests() {
            set.put(Image::Guest(name), embedded(name)?)?;
        }
        let missing = set.path(Image::Missing);
        match fs::remove_file(&missing) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(ImageError::Write {
                    path: missing,
                    source,
                })
            }
        }
        Ok(set)
    }

    /// Where `image` is (for [`Image::Missing`]: where no file is).
    pub fn path(&self, image: Image) -> PathBuf {
        let file = match image {
            Image::Guest(name) => format!("{name}.elf"),
            Image::Generated(name) => format!("{name}.elf"),
            Image::Missing => "missing.elf".to_string(),
        };
        self.dir.join(file)
    }

    /// Writes the generated image `name` (its file: `<name>.elf`).
    pub fn add(&self, name: &'static str, bytes: &[u8]) -> Result<(), ImageError> {
        self.put(Image::Generated(name), bytes)
    }

    fn put(&self, image: Image, bytes: &[u8]) -> Result<(), ImageError> {
        let path = self.path(image);
        fs::write(&path, bytes).map_err(|source| ImageError::Write { path, source })
    }
}

/// The bytes of an embedded guest.
pub fn embedded(name: &'static str) -> Result<&'static [u8], ImageError> {
    pageflip_workloads::image(name).ok_or(ImageError::NotEmbedded(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_every_image_and_no_missing_one() {
        let dir = tempfile::tempdir().unwrap();
        let set = ImageSet::write(dir.path()).unwrap();
        for name in guests() {
            let on_disk = fs::read(set.path(Image::Guest(name))).unwrap();
            assert_eq!(on_disk, embedded(name).unwrap(), "{name}");
        }
        set.add("extra", b"bytes").unwrap();
        assert_eq!(
            fs::read(set.path(Image::Generated("extra"))).unwrap(),
            b"bytes"
        );
        assert!(!set.path(Image::Missing).exists());
    }
}
