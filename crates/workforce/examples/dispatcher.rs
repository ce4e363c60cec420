//! bigopool's image-processing example on `workforce::collect::Dispatcher`:
//! jobs that make thumbnails and return them, some failing, every result and
//! every error handed back by `wait()`.
//!
//! ```sh
//! cargo run -p workforce --example dispatcher                           # 24 images
//! cargo run -p workforce --example dispatcher -- --images 200 --workers 4
//! ```
//!
//! What it shows:
//!
//! - **A job is a value that runs once.** `ThumbnailJob` owns its image and
//!   implements [`Job`]: `execute(self)` returns the thumbnail or an error
//!   (bigopool's `Execute() (interface{}, error)`, typed). A closure
//!   `move || -> Result<R, E>` is a job too.
//! - **Backpressure.** `submit` blocks while `queue` jobs wait for a worker,
//!   so the loader never holds more than `queue + workers` decoded images in
//!   memory, however many there are.
//! - **Every outcome.** `wait()` returns an [`Outcome`]: the thumbnails, and an
//!   `Errors` of [`JobError`]s: `Failed` for a job that returned an error (a
//!   truncated file, a pixel format it cannot read) and `Panicked` for one
//!   that panicked (here a real bug: an image smaller than the thumbnail makes
//!   empty boxes, and the average divides by zero). A panic is caught; the
//!   worker goes on with the next job. The default panic hook still prints it
//!   on stderr.
//! - **Order and identity.** `ordered(true)` gives results, and errors, in
//!   submission order instead of completion order. Each result and each error
//!   carries its job's index ([`Indexed`]), the number `submit` returned, so
//!   a panic, whose message cannot name its image, is matched to its image
//!   by that index.
//!
//! Output: one line per thumbnail (name, source size, thumbnail checksum,
//! mean brightness) in submission order, one line per error, then
//! `summary: jobs=<n> ok=<n> failed=<n> panicked=<n>`.

use anyhow::Context as _;
use workforce::collect::{Dispatcher, Indexed, Job, JobError, Outcome};

const USAGE: &str = "usage: dispatcher [--images N] [--workers N] [--queue N]";

/// The thumbnails' side, in pixels.
const THUMBNAIL_SIDE: usize = 16;

/// The command line.
struct Options {
    images: usize,
    workers: usize,
    queue: usize,
}

fn parse_args() -> anyhow::Result<Options> {
    let mut options = Options {
        images: 24,
        workers: std::thread::available_parallelism().map_or(2, usize::from),
        queue: 4,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut number = || -> anyhow::Result<usize> {
            let value = args
                .next()
                .with_context(|| format!("{flag} needs a number"))?;
            value
                .parse()
                .with_context(|| format!("{flag} {value:?} is not a number"))
        };
        match flag.as_str() {
            "--images" => options.images = number()?,
            "--workers" => options.workers = number()?,
            "--queue" => options.queue = number()?,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => anyhow::bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    Ok(options)
}

/// How an image's pixels are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PixelFormat {
    Rgb8,
    Cmyk8,
}

/// A decoded image, as a loader hands it over.
struct Image {
    name: String,
    width: usize,
    height: usize,
    format: PixelFormat,
    pixels: Vec<u8>,
}

/// A deterministic stand-in for reading image `id` from disk. Most are RGB
/// photos of a few hundred pixels a side; some are broken in the ways real
/// files are: every 7th from 3 on is truncated, every 11th from 5 on is CMYK,
/// and every 13th from 12 on is an 8×8 icon.
fn load(id: usize) -> Image {
    let name = format!("img-{id:03}");
    if id % 13 == 12 {
        return Image {
            name,
            width: 8,
            height: 8,
            format: PixelFormat::Rgb8,
            pixels: noise(id, 8 * 8 * 3),
        };
    }
    let width = 200 + (id * 37) % 120;
    let height = 150 + (id * 53) % 110;
    if id % 11 == 5 {
        return Image {
            name,
            width,
            height,
            format: PixelFormat::Cmyk8,
            pixels: noise(id, width * height * 4),
        };
    }
    let mut pixels = noise(id, width * height * 3);
    if id % 7 == 3 {
        pixels.truncate(pixels.len() / 2);
    }
    Image {
        name,
        width,
        height,
        format: PixelFormat::Rgb8,
        pixels,
    }
}

/// `len` bytes of xorshift noise seeded by `seed`.
fn noise(seed: usize, len: usize) -> Vec<u8> {
    let mut state = (seed as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut bytes = Vec::with_capacity(len + 8);
    while bytes.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        bytes.extend_from_slice(&state.to_le_bytes());
    }
    bytes.truncate(len);
    bytes
}

/// What a job returns: the thumbnail, with the name of its image (a result
/// does not say which job it came from).
struct Thumbnail {
    name: String,
    source: (usize, usize),
    pixels: Vec<u8>,
}

impl Thumbnail {
    /// The mean of every channel of every pixel, 0 to 255.
    fn mean_brightness(&self) -> f64 {
        let sum: u64 = self.pixels.iter().map(|&byte| u64::from(byte)).sum();
        sum as f64 / self.pixels.len() as f64
    }
}

/// One image to shrink to a `THUMBNAIL_SIDE`-square thumbnail.
struct ThumbnailJob {
    image: Image,
}

impl Job<Thumbnail, anyhow::Error> for ThumbnailJob {
    fn execute(self) -> anyhow::Result<Thumbnail> {
        let Image {
            name,
            width,
            height,
            format,
            pixels,
        } = self.image;
        anyhow::ensure!(
            format == PixelFormat::Rgb8,
            "{name}: unsupported pixel format {format:?}"
        );
        let expected = width * height * 3;
        anyhow::ensure!(
            pixels.len() == expected,
            "{name}: truncated pixel data: {} of {expected} bytes",
            pixels.len()
        );
        Ok(Thumbnail {
            pixels: box_average(&pixels, width, height),
            source: (width, height),
            name,
        })
    }
}

/// Shrinks an RGB image by averaging each box of source pixels into one
/// thumbnail pixel.
///
/// The bug the example keeps on purpose: an image smaller than the thumbnail
/// has boxes with no pixel in them, and `sum / count` divides by zero (a
/// panic in debug and release builds alike).
fn box_average(pixels: &[u8], width: usize, height: usize) -> Vec<u8> {
    let mut thumbnail = Vec::with_capacity(THUMBNAIL_SIDE * THUMBNAIL_SIDE * 3);
    for ty in 0..THUMBNAIL_SIDE {
        let rows = ty * height / THUMBNAIL_SIDE..(ty + 1) * height / THUMBNAIL_SIDE;
        for tx in 0..THUMBNAIL_SIDE {
            let columns = tx * width / THUMBNAIL_SIDE..(tx + 1) * width / THUMBNAIL_SIDE;
            let count = rows.len() * columns.len();
            for channel in 0..3 {
                let mut sum = 0usize;
                for y in rows.clone() {
                    for x in columns.clone() {
                        sum += usize::from(pixels[(y * width + x) * 3 + channel]);
                    }
                }
                thumbnail.push(u8::try_from(sum / count).unwrap_or(u8::MAX));
            }
        }
    }
    thumbnail
}

fn main() -> anyhow::Result<()> {
    let options = parse_args()?;
    let dispatcher = Dispatcher::builder()
        .workers(options.workers)
        .queue(options.queue)
        .ordered(true)
        .build()?;

    let mut names = Vec::with_capacity(options.images);
    for id in 0..options.images {
        let image = load(id);
        let name = image.name.clone();
        let index = dispatcher.submit(ThumbnailJob { image }); // blocks while the queue is full
        // Indices count submissions from 0: this job's is its place in `names`.
        debug_assert_eq!(index, names.len() as u64);
        names.push(name);
    }
    let Outcome {
        results, errors, ..
    } = dispatcher.wait();

    for Indexed {
        value: thumbnail, ..
    } in &results
    {
        let (width, height) = thumbnail.source;
        println!(
            "ok        {}  {width}x{height} -> {THUMBNAIL_SIDE}x{THUMBNAIL_SIDE}  b3 {}  mean {:.1}",
            thumbnail.name,
            &blake3::hash(&thumbnail.pixels).to_hex()[..16],
            thumbnail.mean_brightness(),
        );
    }

    // An error message names its image; a panic's message does not, but its
    // index does.
    let mut failed = 0;
    let mut panics = Vec::new();
    for Indexed { index, value } in &errors {
        match value {
            JobError::Failed(error) => {
                failed += 1;
                println!("failed    {error}");
            }
            JobError::Panicked { message, .. } => {
                let name = usize::try_from(*index)
                    .ok()
                    .and_then(|index| names.get(index))
                    .map_or("an unknown image", String::as_str);
                panics.push(format!("panicked  {name}: {message}"));
            }
        }
    }
    for line in &panics {
        println!("{line}");
    }

    anyhow::ensure!(
        results.len() + errors.len() == options.images,
        "a job went missing"
    );
    println!(
        "summary: jobs={} ok={} failed={failed} panicked={}",
        options.images,
        results.len(),
        panics.len()
    );
    Ok(())
}
