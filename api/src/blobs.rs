//! The blob store: where the bytes of documents and attachments live,
//! through the `object_store` crate. A local directory under the data
//! directory by default (zero setup, one node), or any S3-compatible store
//! (`--blob-store s3://bucket/prefix`, credentials and endpoint from the
//! usual `AWS_*` variables), which several API nodes share.
//!
//! Bytes are streamed both ways: an upload is written in parts as it
//! arrives, its SHA-256 computed on the way, and never held whole in
//! memory; a download is read in chunks.

use std::ops::Range;
use std::path::Path as FsPath;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    GetOptions, GetRange, GetResultPayload, ObjectStore, ObjectStoreExt, WriteMultipart,
};
use sha2::{Digest, Sha256};

/// The part size of a multipart write (S3's minimum part size): at most
/// this much of an upload is buffered at a time.
const PART_SIZE: usize = 5 * 1024 * 1024;

/// How much of a local file one read takes (and one chunk of a download
/// holds). `object_store`'s own stream of a local file reads 8 KiB per
/// blocking task: a 20 MiB download was 2 560 hand-offs to the blocking
/// pool and back, and as many more for its hash check.
const READ_CHUNK: usize = 256 * 1024;

/// Where blobs go.
#[derive(Clone)]
pub struct Blobs {
    store: Arc<dyn ObjectStore>,
    /// For logs: `file:///...` or `s3://bucket/prefix`.
    pub location: String,
}

impl std::fmt::Debug for Blobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Blobs")
            .field("location", &self.location)
            .finish()
    }
}

/// A failure of the blob store.
#[derive(Debug, thiserror::Error)]
#[error("blob store: {0}")]
pub struct BlobError(pub String);

impl From<object_store::Error> for BlobError {
    fn from(e: object_store::Error) -> Self {
        BlobError(e.to_string())
    }
}

impl Blobs {
    /// From `--blob-store`: `s3://bucket[/prefix]`, or `None` for the
    /// directory `<data dir>/blobs`.
    pub fn open(spec: Option<&str>, data_dir: &FsPath) -> Result<Blobs, String> {
        match spec {
            None => Blobs::local(&data_dir.join("blobs")),
            Some(url) => Blobs::s3(url),
        }
    }

    /// A local directory, created when missing.
    pub fn local(dir: &FsPath) -> Result<Blobs, String> {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create the blob directory {}: {e}", dir.display()))?;
        let store = object_store::local::LocalFileSystem::new_with_prefix(dir)
            .map_err(|e| format!("blob directory {}: {e}", dir.display()))?
            .with_automatic_cleanup(true);
        Ok(Blobs {
            store: Arc::new(store),
            location: format!("file://{}", dir.display()),
        })
    }

    /// An S3-compatible bucket: `s3://bucket[/prefix]`, with credentials,
    /// region and endpoint from `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
    /// `AWS_REGION`, `AWS_ENDPOINT_URL` and `AWS_ALLOW_HTTP`.
    pub fn s3(url: &str) -> Result<Blobs, String> {
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| format!("--blob-store {url:?}: expected s3://bucket[/prefix]"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(format!("--blob-store {url:?}: no bucket"));
        }
        let s3 = object_store::aws::AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .build()
            .map_err(|e| format!("--blob-store {url:?}: {e}"))?;
        let prefix = prefix.trim_matches('/');
        let store: Arc<dyn ObjectStore> = if prefix.is_empty() {
            Arc::new(s3)
        } else {
            Arc::new(object_store::prefix::PrefixStore::new(s3, prefix))
        };
        Ok(Blobs {
            store,
            location: format!("s3://{bucket}/{prefix}"),
        })
    }

    /// Starts writing the blob `key`.
    pub async fn writer(&self, key: &str) -> Result<BlobWriter, BlobError> {
        let upload = self.store.put_multipart(&Path::from(key)).await?;
        Ok(BlobWriter {
            write: Some(WriteMultipart::new_with_chunk_size(upload, PART_SIZE)),
            hasher: Sha256::new(),
            size: 0,
        })
    }

    /// The blob's size, or `None` when it does not exist.
    pub async fn size(&self, key: &str) -> Result<Option<u64>, BlobError> {
        match self.store.head(&Path::from(key)).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Streams the blob's bytes (all of them, or `range`), in chunks of at
    /// most [`READ_CHUNK`] bytes from a local file.
    pub async fn read(
        &self,
        key: &str,
        range: Option<Range<u64>>,
    ) -> Result<BoxStream<'static, Result<Bytes, BlobError>>, BlobError> {
        let options = GetOptions {
            range: range.map(GetRange::Bounded),
            ..GetOptions::default()
        };
        let got = self.store.get_opts(&Path::from(key), options).await?;
        let range = got.range.clone();
        Ok(match got.payload {
            GetResultPayload::File(file, _) => file_chunks(file, range),
            GetResultPayload::Stream(stream) => {
                stream.map(|chunk| chunk.map_err(BlobError::from)).boxed()
            }
        })
    }

    /// Reads the whole blob through SHA-256 (nothing kept): its size and
    /// hash (lower-case hex). A local file is read and hashed in one
    /// blocking task, [`READ_CHUNK`] bytes at a time.
    pub async fn digest(&self, key: &str) -> Result<(u64, String), BlobError> {
        let got = self
            .store
            .get_opts(&Path::from(key), GetOptions::default())
            .await?;
        let mut stream = match got.payload {
            GetResultPayload::File(file, _) => {
                return tokio::task::spawn_blocking(move || hash_file(file))
                    .await
                    .map_err(|e| BlobError(format!("hashing task: {e}")))?;
            }
            GetResultPayload::Stream(stream) => stream,
        };
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            size += chunk.len() as u64;
            hasher.update(&chunk);
        }
        Ok((size, hex::encode(hasher.finalize())))
    }

    /// Writes a small blob at once (the demo's files).
    pub async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), BlobError> {
        self.store.put(&Path::from(key), bytes.into()).await?;
        Ok(())
    }

    /// Writes small blobs outside of any runtime (the demo's files, before
    /// the server starts).
    pub fn put_all_blocking(&self, blobs: Vec<(String, Vec<u8>)>) -> Result<(), BlobError> {
        if blobs.is_empty() {
            return Ok(());
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| BlobError(format!("no runtime: {e}")))?;
        runtime.block_on(async {
            for (key, bytes) in blobs {
                self.put(&key, bytes).await?;
            }
            Ok(())
        })
    }

    /// Deletes `keys` outside of any runtime (after an organization's rows
    /// are deleted and committed); a failure is logged, not fatal: such a
    /// blob is named by no row and never served. Returns how many went.
    pub fn delete_all_blocking(&self, keys: &[String]) -> usize {
        if keys.is_empty() {
            return 0;
        }
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime,
            Err(e) => {
                tracing::warn!(error = %e, count = keys.len(), "blobs left behind: no runtime");
                return 0;
            }
        };
        runtime.block_on(async {
            let mut deleted = 0;
            for key in keys {
                match self.delete(key).await {
                    Ok(()) => deleted += 1,
                    Err(e) => tracing::warn!(key = %key, error = %e, "blob left behind"),
                }
            }
            deleted
        })
    }

    /// Deletes the blob (a missing one is not an error).
    pub async fn delete(&self, key: &str) -> Result<(), BlobError> {
        match self.store.delete(&Path::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// A blob being written: its parts go out as they fill, its hash and size
/// are computed on the way. Dropped without [`BlobWriter::finish`], the
/// upload is aborted.
pub struct BlobWriter {
    write: Option<WriteMultipart>,
    hasher: Sha256,
    size: u64,
}

impl BlobWriter {
    /// Appends `chunk`, waiting while too many parts are in flight.
    pub async fn write(&mut self, chunk: &[u8]) -> Result<(), BlobError> {
        let Some(write) = self.write.as_mut() else {
            return Err(BlobError("write after finish".into()));
        };
        write.wait_for_capacity(2).await?;
        write.write(chunk);
        self.hasher.update(chunk);
        self.size += chunk.len() as u64;
        Ok(())
    }

    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Completes the blob: its size and SHA-256 (lower-case hex).
    pub async fn finish(mut self) -> Result<(u64, String), BlobError> {
        let Some(write) = self.write.take() else {
            return Err(BlobError("finished twice".into()));
        };
        write.finish().await?;
        let hasher = std::mem::take(&mut self.hasher);
        Ok((self.size, hex::encode(hasher.finalize())))
    }

    /// Gives the upload up (nothing is left behind).
    pub async fn abort(mut self) {
        if let Some(write) = self.write.take()
            && let Err(e) = write.abort().await
        {
            tracing::warn!(error = %e, "aborting a blob upload failed");
        }
    }
}

/// Size and SHA-256 (hex) of a file, from where it stands to its end.
fn hash_file(mut file: std::fs::File) -> Result<(u64, String), BlobError> {
    use std::io::Read;
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(BlobError(format!("reading a blob: {e}"))),
        };
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((size, hex::encode(hasher.finalize())))
}

/// The bytes `range` of a local file, one blocking read of at most
/// [`READ_CHUNK`] bytes per chunk: one chunk in memory at a time, the next
/// read only when the body asks for it.
fn file_chunks(
    file: std::fs::File,
    range: Range<u64>,
) -> BoxStream<'static, Result<Bytes, BlobError>> {
    let start = range.start;
    let remaining = range.end.saturating_sub(range.start);
    futures_util::stream::try_unfold(
        (Some(file), remaining, true),
        move |(file, remaining, first)| async move {
            let Some(mut file) = file.filter(|_| remaining > 0) else {
                return Ok(None);
            };
            let (file, chunk) = tokio::task::spawn_blocking(move || {
                use std::io::{Read, Seek, SeekFrom};
                if first {
                    file.seek(SeekFrom::Start(start))
                        .map_err(|e| BlobError(format!("seeking in a blob: {e}")))?;
                }
                let want = usize::try_from(remaining.min(READ_CHUNK as u64)).unwrap_or(READ_CHUNK);
                let mut chunk = Vec::with_capacity(want);
                (&mut file)
                    .take(want as u64)
                    .read_to_end(&mut chunk)
                    .map_err(|e| BlobError(format!("reading a blob: {e}")))?;
                Ok::<_, BlobError>((file, chunk))
            })
            .await
            .map_err(|e| BlobError(format!("reading task: {e}")))??;
            if chunk.is_empty() {
                return Err(BlobError(format!(
                    "blob shorter than expected: {remaining} bytes missing"
                )));
            }
            let left = remaining - chunk.len() as u64;
            Ok(Some((Bytes::from(chunk), (Some(file), left, false))))
        },
    )
    .boxed()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::{Blobs, READ_CHUNK};
    use futures_util::StreamExt;
    use sha2::{Digest, Sha256};

    #[test]
    fn delete_all_blocking_removes_the_named_blobs_only() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::local(dir.path()).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            for key in ["org_a/doc_1", "org_a/doc_2", "org_b/doc_3"] {
                blobs.put(key, b"%PDF-1.4".to_vec()).await.unwrap();
            }
        });
        drop(runtime);
        let gone = [
            "org_a/doc_1".to_owned(),
            "org_a/doc_2".to_owned(),
            "org_a/missing".to_owned(),
        ];
        assert_eq!(blobs.delete_all_blocking(&gone), 3);
        assert_eq!(blobs.delete_all_blocking(&[]), 0);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            assert_eq!(blobs.size("org_a/doc_1").await.unwrap(), None);
            assert_eq!(blobs.size("org_a/doc_2").await.unwrap(), None);
            assert_eq!(blobs.size("org_b/doc_3").await.unwrap(), Some(8));
        });
    }

    #[test]
    fn a_local_blob_reads_back_whole_or_in_part_in_bounded_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::local(dir.path()).unwrap();
        let bytes: Vec<u8> = (0..READ_CHUNK * 2 + 1234)
            .map(|i| (i * 7 % 251) as u8)
            .collect();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            blobs.put("org_a/doc_1", bytes.clone()).await.unwrap();
            let (size, sha) = blobs.digest("org_a/doc_1").await.unwrap();
            assert_eq!(size, bytes.len() as u64);
            assert_eq!(sha, hex::encode(Sha256::digest(&bytes)));
            for range in [
                None,
                Some(0..1),
                Some(5..(READ_CHUNK as u64 + 9)),
                Some((READ_CHUNK as u64 * 2)..bytes.len() as u64),
            ] {
                let mut stream = blobs.read("org_a/doc_1", range.clone()).await.unwrap();
                let mut got = Vec::new();
                while let Some(chunk) = stream.next().await {
                    let chunk = chunk.unwrap();
                    assert!(!chunk.is_empty() && chunk.len() <= READ_CHUNK);
                    got.extend_from_slice(&chunk);
                }
                let want = match &range {
                    Some(r) => &bytes[r.start as usize..r.end as usize],
                    None => &bytes[..],
                };
                assert_eq!(got, want, "{range:?}");
            }
        });
    }
}
