// Small parsing helpers shared by both sides of the memcache text codec: strict decimal
// parsing, key validation and base64 (meta 'b' flag). Pure functions over bytes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace cachetier::memcache {

// Strict unsigned decimal: digits only, no sign, no overflow. Returns false otherwise.
bool parse_u64(std::string_view s, uint64_t& out);
bool parse_u32(std::string_view s, uint32_t& out);
// Optional leading '-', then digits; no overflow.
bool parse_i64(std::string_view s, int64_t& out);

// A key is 1..250 bytes with no whitespace or control characters.
bool valid_key(std::string_view key);

// Decodes standard base64 (with padding) into out. Returns false on a malformed input.
bool base64_decode(std::string_view in, std::string& out);
void base64_encode(std::string_view in, std::string& out);

// Splits s at single spaces (runs of spaces count as one) into at most max tokens; returns the
// count. When more tokens remain, the last slot holds the unsplit rest of the line.
size_t tokenize(std::string_view s, std::string_view* tokens, size_t max);

}  // namespace cachetier::memcache
