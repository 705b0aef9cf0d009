// Crc32c: the CRC-32C (Castagnoli) checksum of a byte string, as iSCSI, ext4 and LevelDB use
// it. On x86-64 processors with SSE 4.2 it runs on the processor's crc32 instruction, eight
// bytes at a time; elsewhere on a table, a byte at a time. Both give the same value.
//
// Thread safety: pure functions.

#ifndef HANDOFF_STORAGE_CRC32C_H_
#define HANDOFF_STORAGE_CRC32C_H_

#include <cstdint>
#include <string_view>

namespace handoff::storage {

// The checksum of `data` appended to bytes whose checksum was `crc` (0 for none), so that
// Crc32c(Crc32c(0, a), b) == Crc32c(0, a + b).
uint32_t Crc32c(uint32_t crc, std::string_view data);

// The table implementation, whatever the processor: for tests that compare the two.
uint32_t Crc32cPortable(uint32_t crc, std::string_view data);
// Whether Crc32c uses the processor's instruction.
bool Crc32cAccelerated();

}  // namespace handoff::storage

#endif  // HANDOFF_STORAGE_CRC32C_H_
