//! ShortIds from the app-signing key that verified a process.
//!
//! The capsule trusts a process's `ShortId` to pick its role, so the ShortId
//! must come from something the app's author cannot choose. With the
//! signature checker required, the one such thing is *which* key verified
//! the app: the checker stores the accepted key's index as the credential's
//! metadata. [`RoleKeyShortIds`] maps key indices to fixed ShortIds (the
//! dosing key to the dosing app's id, the telemetry key to the telemetry
//! app's id), and gives apps verified by any other key an id derived from
//! their name in a range no fixed id may use. Taking a privileged app's name
//! therefore gains nothing, and two apps signed with the same role key never
//! run together (equal ShortIds).

use core::num::NonZeroU32;
use kernel::process::{Process, ProcessBinary, ShortId};
use kernel::process_checker::{AppUniqueness, Compress};

/// Top nibble of ShortIds derived from names (apps signed by a key with no
/// fixed id). Fixed ids must not use it.
pub const NAMED_ID_TAG: u32 = infusion_core::abi::app_id::NAMED_ID_TAG;

/// The ShortId policy. See the module documentation.
pub struct RoleKeyShortIds {
    fixed: &'static [Option<NonZeroU32>],
}

impl RoleKeyShortIds {
    /// `fixed[i]` is the ShortId of apps verified by key `i` (`None`: derive
    /// from the name). Fixed ids with the top nibble [`NAMED_ID_TAG`] are
    /// ignored.
    pub const fn new(fixed: &'static [Option<NonZeroU32>]) -> Self {
        Self { fixed }
    }

    /// The ShortId for a process verified by key `key_index` (`None`: not
    /// verified) with package name `name`.
    pub fn short_id(&self, key_index: Option<usize>, name: &str) -> ShortId {
        let Some(key) = key_index else {
            return ShortId::LocallyUnique;
        };
        match self.fixed.get(key).copied().flatten() {
            Some(id) if id.get() & NAMED_ID_TAG != NAMED_ID_TAG => ShortId::Fixed(id),
            _ => {
                let crc = kernel::utilities::helpers::crc32_posix(name.as_bytes());
                NonZeroU32::new(NAMED_ID_TAG | (crc & !NAMED_ID_TAG))
                    .map_or(ShortId::LocallyUnique, ShortId::Fixed)
            }
        }
    }
}

impl Compress for RoleKeyShortIds {
    fn to_short_id(&self, process: &ProcessBinary) -> ShortId {
        let key = process
            .credential
            .get()
            .and_then(|accepted| accepted.metadata)
            .map(|metadata| metadata.metadata);
        let name = process.header.get_package_name().unwrap_or("");
        self.short_id(key, name)
    }
}

impl AppUniqueness for RoleKeyShortIds {
    fn different_identifier(&self, process_a: &ProcessBinary, process_b: &ProcessBinary) -> bool {
        self.to_short_id(process_a) != self.to_short_id(process_b)
    }

    fn different_identifier_process(
        &self,
        process_a: &ProcessBinary,
        process_b: &dyn Process,
    ) -> bool {
        self.to_short_id(process_a) != process_b.short_app_id()
    }

    fn different_identifier_processes(
        &self,
        process_a: &dyn Process,
        process_b: &dyn Process,
    ) -> bool {
        process_a.short_app_id() != process_b.short_app_id()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOSING: NonZeroU32 = NonZeroU32::new(0x1000_0001).unwrap();
    const TELEMETRY: NonZeroU32 = NonZeroU32::new(0x1000_0002).unwrap();
    static FIXED: [Option<NonZeroU32>; 3] = [Some(DOSING), Some(TELEMETRY), None];

    #[test]
    fn role_keys_give_fixed_ids_whatever_the_name() {
        let policy = RoleKeyShortIds::new(&FIXED);
        let fixed = |id: ShortId| match id {
            ShortId::Fixed(id) => Some(id),
            ShortId::LocallyUnique => None,
        };
        assert_eq!(fixed(policy.short_id(Some(0), "dosing")), Some(DOSING));
        assert_eq!(fixed(policy.short_id(Some(0), "other")), Some(DOSING));
        assert_eq!(
            fixed(policy.short_id(Some(1), "telemetry")),
            Some(TELEMETRY)
        );
        assert!(matches!(
            policy.short_id(None, "dosing"),
            ShortId::LocallyUnique
        ));
    }

    #[test]
    fn other_keys_cannot_reach_a_fixed_id() {
        let policy = RoleKeyShortIds::new(&FIXED);
        for name in ["dosing", "telemetry", "rogue", ""] {
            for key in [2, 3, 99] {
                match policy.short_id(Some(key), name) {
                    ShortId::Fixed(id) => {
                        assert_eq!(id.get() & NAMED_ID_TAG, NAMED_ID_TAG);
                        assert_ne!(id, DOSING);
                        assert_ne!(id, TELEMETRY);
                    }
                    ShortId::LocallyUnique => panic!("named ids are fixed"),
                }
            }
        }
    }
}
