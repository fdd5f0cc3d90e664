//! The commands that need no server: `keygen`, `hash`, `encrypt` and `decrypt`.

use tocsin_sdk::protocol::{KeyPair, Nonce, PublicKey, SecretKey};

use super::{cli, failed, ok};

#[tokio::test]
async fn keygen_prints_a_matching_pair_or_writes_a_private_file() {
    let out = ok(&cli(&[], &["keygen"], None).await);
    let lines: Vec<&str> = out.lines().collect();
    let secret = SecretKey::parse(lines[0].strip_prefix("private:").unwrap()).unwrap();
    let public = PublicKey::parse(lines[1].strip_prefix("public:").unwrap()).unwrap();
    assert_eq!(secret.public_key(), public);

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.key");
    let path_arg = path.to_str().unwrap();
    ok(&cli(&[], &["keygen", "--out", path_arg], None).await);
    let written = SecretKey::parse(std::fs::read_to_string(&path).unwrap().trim()).unwrap();
    let public_file = std::fs::read_to_string(dir.path().join("gateway.key.pub")).unwrap();
    assert_eq!(
        PublicKey::parse(public_file.trim()).unwrap(),
        written.public_key()
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    failed(&cli(&[], &["keygen", "--out", path_arg], None).await, 1);
}

#[tokio::test]
async fn hash_prints_the_contract_vectors() {
    let phone = ok(&cli(&[], &["hash", "--phone", "41791234567"], None).await);
    assert_eq!(
        phone.trim(),
        "ad398f4d7ebe63c6550a486cc6e07f9baa09bd9d8b3d8cb9d9be106d35a7fdbc"
    );
    let email = ok(&cli(&[], &["hash", "--email", "test@threema.ch"], None).await);
    assert_eq!(
        email.trim(),
        "1ea093239cc5f0e1b6ec81b866265b921f26dc4033025410063309f4d1a8ee2c"
    );
    failed(&cli(&[], &["hash"], None).await, 2);
}

#[tokio::test]
async fn what_encrypt_prints_decrypt_opens_with_the_other_key_pair() {
    let (alice, bob) = (KeyPair::generate(), KeyPair::generate());
    let as_alice = [("TOCSIN_PRIVATE_KEY", alice.secret.to_hex().to_string())];
    let to_bob = bob.public.to_string();
    let sealed = ok(&cli(
        &as_alice,
        &["encrypt", "--to-public-key", &to_bob],
        Some("Grüezi\n"),
    )
    .await);
    let (nonce, boxed) = sealed.trim().split_once('\n').unwrap();
    let as_bob = [(
        "TOCSIN_PRIVATE_KEY",
        format!("private:{}", *bob.secret.to_hex()),
    )];
    let from_alice = alice.public.to_string();
    let args = [
        "decrypt",
        "--from-public-key",
        &from_alice,
        "--nonce",
        nonce,
    ];
    assert_eq!(ok(&cli(&as_bob, &args, Some(boxed)).await), "Grüezi\n");
    let wrong_nonce = Nonce::random().to_string();
    let args = [
        "decrypt",
        "--from-public-key",
        &from_alice,
        "--nonce",
        &wrong_nonce,
    ];
    failed(&cli(&as_bob, &args, Some(boxed)).await, 1);
}
