//! `CallbackReceiver` against arbitrary input: random bodies, signed random fields and
//! single-byte changes to a signed body are refused (or, for the last, accepted only
//! when they mean the same), and never make it panic.

use proptest::prelude::*;

use super::vectors::{receiver, Fields, DATE, SECRET};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bodies_are_refused_without_a_panic(
        body in proptest::collection::vec(any::<u8>(), 0..20_000),
        now in any::<u64>(),
    ) {
        let refused = receiver().receive(&body, now).unwrap_err();
        prop_assert!(matches!(refused.status(), 400 | 401 | 413), "{refused}");
    }

    #[test]
    fn signed_arbitrary_fields_never_panic(
        from in "[A-Z0-9*]{7,9}|.{0,12}",
        message_id in "[0-9a-fA-F]{0,18}",
        date in "[0-9]{0,12}|[0-9.+-]{0,22}",
        nonce in "[0-9a-f]{48}|[0-9a-fx]{46,50}",
        box_hex in "[0-9a-fA-F ]{0,64}",
        now in any::<u64>(),
    ) {
        // Near the date when there is one, so that well-formed fields can pass.
        let now = date.parse::<u64>().unwrap_or(now);
        let fields = Fields { from, to: "*TESTTST".into(), message_id, date, nonce, box_hex };
        match receiver().receive(&fields.signed(SECRET, &[]), now) {
            Ok(taken) => {
                prop_assert_eq!(taken.from.as_str(), fields.from.as_str());
                prop_assert_eq!(taken.message_id.to_string(), fields.message_id.to_lowercase());
                prop_assert_eq!(Some(taken.date), fields.date.parse::<u64>().ok());
            }
            Err(refused) => prop_assert!(matches!(refused.status(), 400), "{refused}"),
        }
    }

    #[test]
    fn flipping_any_byte_of_a_signed_body_is_refused_or_harmless(
        index in 0usize..200,
        flip in 1u8..=255,
    ) {
        let body = Fields::vector().signed(SECRET, &[]);
        let mut spoiled = body.clone();
        let index = index % spoiled.len();
        spoiled[index] ^= flip;
        if let Ok(taken) = receiver().receive(&spoiled, DATE) {
            // Only a change that decodes to the same fields can pass (say, a hex digit
            // of the MAC in the other case).
            prop_assert_eq!(taken, receiver().receive(&body, DATE).unwrap());
        }
    }
}
