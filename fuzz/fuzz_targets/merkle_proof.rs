#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gridhub::fuzzing::ledger::merkle_proof(data));
