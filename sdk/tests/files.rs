//! Received files: the size and key checks on downloaded blobs, and saving under names
//! that stay inside the directory without replacing anything.

use tocsin_sdk::crypto::{encrypt_file_blob, encrypt_thumbnail_blob, SymmetricKey};
use tocsin_sdk::files::{
    file_blob_limit, open_file_blob, open_thumbnail_blob, safe_file_name, DownloadedFile, FileError,
};
use tocsin_sdk::protocol::{BlobId, FileMessage};

fn message(size: u64) -> FileMessage {
    let mut file = FileMessage::new(
        BlobId::random(),
        SymmetricKey::generate(),
        "text/plain".into(),
        size,
    );
    file.thumbnail_blob_id = Some(BlobId::random());
    file
}

#[test]
fn the_declared_size_bounds_the_download_and_must_match() {
    let file = message(5);
    assert_eq!(file_blob_limit(&file, 5), Ok(21));
    assert_eq!(
        file_blob_limit(&file, 4),
        Err(FileError::TooLarge {
            declared: 5,
            limit: 4
        })
    );
    let sealed = encrypt_file_blob(&file.key, b"hello");
    assert_eq!(open_file_blob(&file, &sealed).unwrap(), b"hello");
    let longer = encrypt_file_blob(&file.key, b"hello!");
    assert!(matches!(
        open_file_blob(&file, &longer),
        Err(FileError::SizeMismatch {
            expected: 5,
            got: 6,
            ..
        })
    ));
    assert!(matches!(
        open_file_blob(&file, &sealed[..10]),
        Err(FileError::SizeMismatch { .. })
    ));
    let mut tampered = sealed.clone();
    tampered[20] ^= 1;
    assert_eq!(
        open_file_blob(&file, &tampered),
        Err(FileError::Decrypt(file.blob_id))
    );
    // The thumbnail nonce differs from the file nonce.
    let thumbnail = encrypt_thumbnail_blob(&file.key, b"tiny");
    assert_eq!(open_thumbnail_blob(&file, &thumbnail).unwrap(), b"tiny");
    assert!(open_thumbnail_blob(&file, &sealed).is_err());
}

#[test]
fn names_lose_directories_dots_and_control_characters() {
    let cases = [
        (Some("report.pdf"), "report.pdf"),
        (Some("../../etc/passwd"), "passwd"),
        (Some("..\\..\\boot.ini"), "boot.ini"),
        (Some("/absolute/path/x.txt"), "x.txt"),
        (Some(".bashrc"), "bashrc"),
        (Some(".."), "file"),
        (Some("dir/"), "file"),
        (Some("a\u{0}b\nc.txt"), "abc.txt"),
        (Some("what?<>|*:\".txt"), "what_______.txt"),
        (Some("  spaced.txt  "), "spaced.txt"),
        (Some("CON.txt"), "_CON.txt"),
        (Some("com1"), "_com1"),
        (Some("console.txt"), "console.txt"),
        (Some(""), "file"),
        (None, "file"),
    ];
    for (given, expected) in cases {
        assert_eq!(safe_file_name(given), expected, "{given:?}");
    }
    let long = format!("{}.tar.gz", "ä".repeat(300));
    let cut = safe_file_name(Some(&long));
    assert!(cut.len() <= 200 && cut.ends_with(".gz"), "{cut}");
}

#[test]
fn saving_never_replaces_a_file_and_puts_the_thumbnail_beside() {
    let dir = tempfile::tempdir().unwrap();
    let file = message(3);
    let mut downloaded = DownloadedFile::new(&file, b"one".to_vec(), None);
    downloaded.name = Some("../notes.txt".into());
    let first = downloaded.save_in(dir.path()).unwrap();
    assert_eq!(first.path, dir.path().join("notes.txt"));
    assert_eq!(first.thumbnail, None);
    downloaded.data = b"two".to_vec();
    let second = downloaded.save_in(dir.path()).unwrap();
    assert_eq!(second.path, dir.path().join("notes (1).txt"));
    assert_eq!(std::fs::read(&first.path).unwrap(), b"one");
    assert_eq!(std::fs::read(&second.path).unwrap(), b"two");

    // A name whose thumbnail name is taken moves on, too.
    std::fs::write(dir.path().join("pic.png.thumbnail"), b"old").unwrap();
    let with_thumbnail = DownloadedFile::new(&file, b"png".to_vec(), Some(b"thumb".to_vec()));
    let mut with_thumbnail = with_thumbnail;
    with_thumbnail.name = Some("pic.png".into());
    let saved = with_thumbnail.save_in(dir.path()).unwrap();
    assert_eq!(saved.path, dir.path().join("pic (1).png"));
    let thumbnail = saved.thumbnail.unwrap();
    assert_eq!(thumbnail, dir.path().join("pic (1).png.thumbnail"));
    assert_eq!(std::fs::read(thumbnail).unwrap(), b"thumb");
    assert!(!dir.path().join("pic.png").exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&saved.path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // The debug form names sizes, not contents.
    let shown = format!("{with_thumbnail:?}");
    assert!(
        shown.contains("bytes: 3") && !shown.contains("112, 110, 103"),
        "{shown}"
    );
}
