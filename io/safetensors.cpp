#include "io/safetensors.hpp"

#include <algorithm>
#include <cstring>
#include <limits>
#include <set>
#include <vector>

#include <nlohmann/json.hpp>

#include "io/atomic_file.hpp"

namespace kiln::io {
namespace {

using json = nlohmann::json;

constexpr std::uint64_t kMaxHeader = 100u << 20;  // 100 MiB, as the reference implementation

const char* code_of(DType t) {
  switch (t) {
    case DType::Float32: return "F32";
    case DType::Float64: return "F64";
    case DType::Int64: return "I64";
    case DType::Bool: return "BOOL";
  }
  return "?";
}

bool dtype_from_code(const std::string& code, DType& out) {
  if (code == "F32") out = kFloat32;
  else if (code == "F64") out = kFloat64;
  else if (code == "I64") out = kInt64;
  else if (code == "U8" || code == "BOOL") out = kBool;  // masks: PyTorch references store them as U8
  else return false;
  return true;
}

std::uint64_t read_u64_le(const unsigned char* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// A value for an error message: a scalar as it is, an array or object by its first items, never deeper
// than a few levels (dump() recurses once per level: a header nested 100,000 deep would overflow the stack).
void brief_into(const json& j, int depth, std::string& out) {
  if (out.size() > 80) return;
  if (j.is_array() || j.is_object()) {
    if (depth >= 3) {
      out += j.is_array() ? "[...]" : "{...}";
      return;
    }
    out += j.is_array() ? "[" : "{";
    std::size_t i = 0;
    for (auto it = j.begin(); it != j.end(); ++it, ++i) {
      if (i > 0) out += ", ";
      if (i == 8 || out.size() > 80) {
        out += "...";
        break;
      }
      if (j.is_object()) out += json(it.key()).dump() + ": ";
      brief_into(*it, depth + 1, out);
    }
    out += j.is_array() ? "]" : "}";
    return;
  }
  out += j.dump();
}

std::string brief(const json& j) {
  std::string out;
  brief_into(j, 0, out);
  return out;
}

struct Entry {
  std::string name;
  DType dtype;
  Shape shape;
  std::uint64_t begin, end;
};

}  // namespace

Safetensors parse_safetensors(const std::string& bytes, const std::string& source) {
  KILN_CHECK(bytes.size() >= 8, "{}: not a safetensors file: {} bytes is shorter than the 8-byte header length",
             source, bytes.size());
  const std::uint64_t n = read_u64_le(reinterpret_cast<const unsigned char*>(bytes.data()));
  KILN_CHECK(n <= kMaxHeader, "{}: header length {} exceeds the {} byte limit", source, n, kMaxHeader);
  KILN_CHECK(n <= bytes.size() - 8, "{}: truncated: the header claims {} bytes but the file has {} after the length",
             source, n, bytes.size() - 8);
  json header;
  // A key twice in one object is refused: which of the two a reader takes is not defined (nlohmann keeps
  // the last, other readers the first), so a file could mean different tensors to different readers.
  std::vector<std::set<std::string>> keys;
  std::string duplicate;
  const json::parser_callback_t no_duplicates = [&](int, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::object_start) keys.emplace_back();
    if (event == json::parse_event_t::object_end && !keys.empty()) keys.pop_back();
    if (event == json::parse_event_t::key && !keys.empty() && !keys.back().insert(parsed.get<std::string>()).second && duplicate.empty())
      duplicate = parsed.get<std::string>();
    return true;
  };
  try {
    header = json::parse(bytes.begin() + 8, bytes.begin() + 8 + static_cast<std::ptrdiff_t>(n), no_duplicates);
  } catch (const json::exception& e) {  // parse errors, and numbers out of range ("x": 1e999)
    throw Error(fmt::format("{}: the header is not valid JSON: {}", source, e.what()));
  }
  KILN_CHECK(duplicate.empty(), "{}: the header names '{}' twice in one object", source, duplicate);
  KILN_CHECK(header.is_object(), "{}: the header must be a JSON object", source);
  const std::uint64_t data_size = bytes.size() - 8 - n;
  const char* data = bytes.data() + 8 + n;

  Safetensors out;
  std::vector<Entry> entries;
  for (const auto& [name, v] : header.items()) {
    if (name == "__metadata__") {
      KILN_CHECK(v.is_object(), "{}: __metadata__ must be an object of strings", source);
      for (const auto& [k, s] : v.items()) {
        KILN_CHECK(s.is_string(), "{}: metadata value of '{}' is not a string", source, k);
        out.metadata[k] = s.get<std::string>();
      }
      continue;
    }
    KILN_CHECK(v.is_object() && v.contains("dtype") && v.contains("shape") && v.contains("data_offsets"),
               "{}: tensor '{}' needs dtype, shape and data_offsets", source, name);
    Entry e{name, kFloat32, {}, 0, 0};
    KILN_CHECK(v["dtype"].is_string() && dtype_from_code(v["dtype"].get<std::string>(), e.dtype),
               "{}: tensor '{}' has unsupported dtype {} (Kiln reads F32, F64, I64, U8, BOOL)", source, name,
               brief(v["dtype"]));
    const json& shape = v["shape"];
    KILN_CHECK(shape.is_array() && shape.size() <= static_cast<std::size_t>(Shape::kMaxRank),
               "{}: tensor '{}' has an invalid shape {}", source, name, brief(shape));
    std::uint64_t numel = 1, nonzero = 1;
    for (const json& d : shape) {
      KILN_CHECK(d.is_number_unsigned(), "{}: tensor '{}' has an invalid dimension {} in shape {}", source, name,
                 brief(d), brief(shape));
      const auto dim = d.get<std::uint64_t>();
      // Note [Addressable shapes]: the non-zero dims too, so a zero cannot hide huge ones.
      KILN_CHECK(dim == 0 || dim <= static_cast<std::uint64_t>(Shape::kMaxElements) / nonzero,
                 "{}: tensor '{}' has a shape {} too large to address", source, name, brief(shape));
      numel *= dim;
      if (dim != 0) nonzero *= dim;
      e.shape.push_back(static_cast<std::int64_t>(dim));
    }
    const json& off = v["data_offsets"];
    KILN_CHECK(off.is_array() && off.size() == 2 && off[0].is_number_unsigned() && off[1].is_number_unsigned(),
               "{}: tensor '{}' has invalid data_offsets {}", source, name, brief(off));
    e.begin = off[0].get<std::uint64_t>();
    e.end = off[1].get<std::uint64_t>();
    KILN_CHECK(e.begin <= e.end && e.end <= data_size,
               "{}: tensor '{}' has data_offsets [{}, {}] outside the {} bytes of data (truncated file?)", source,
               name, e.begin, e.end, data_size);
    KILN_CHECK(e.end - e.begin == numel * element_size(e.dtype),
               "{}: tensor '{}' is {} {} ({} bytes) but its data_offsets span {} bytes", source, name,
               dtype_name(e.dtype), e.shape, numel * element_size(e.dtype), e.end - e.begin);
    entries.push_back(std::move(e));
  }
  // The entries must tile the data section: no overlaps, no holes.
  std::vector<const Entry*> order;
  for (const auto& e : entries) order.push_back(&e);
  // By start, then end: an empty tensor sharing its offset with the next one comes first.
  std::sort(order.begin(), order.end(),
            [](const Entry* a, const Entry* b) { return a->begin != b->begin ? a->begin < b->begin : a->end < b->end; });
  std::uint64_t at = 0;
  for (const Entry* e : order) {
    KILN_CHECK(e->begin == at, "{}: tensor '{}' starts at byte {} but the previous one ends at {} (overlap or gap)",
               source, e->name, e->begin, at);
    at = e->end;
  }
  KILN_CHECK(at == data_size, "{}: {} bytes of data follow the last tensor", source, data_size - at);

  for (const auto& e : entries) {
    Tensor t(e.shape, e.dtype);
    if (e.end > e.begin) std::memcpy(t.raw_data(), data + e.begin, e.end - e.begin);
    if (e.dtype == kBool) {  // normalise U8 masks to 0/1
      bool* p = t.data<bool>();
      const auto* raw = reinterpret_cast<const unsigned char*>(data + e.begin);
      for (std::int64_t i = 0; i < t.numel(); ++i) p[i] = raw[i] != 0;
    }
    out.tensors.emplace(e.name, std::move(t));
  }
  return out;
}

Safetensors load_safetensors(const std::string& path) { return parse_safetensors(read_file(path), path); }

std::string serialize_safetensors(const std::map<std::string, Tensor>& tensors,
                                  const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::uint64_t at = 0;
  for (const auto& [name, t] : tensors) {
    KILN_CHECK(t.defined(), "save_safetensors: tensor '{}' is undefined", name);
    KILN_CHECK(name != "__metadata__", "save_safetensors: '__metadata__' is reserved");
    header[name] = {{"dtype", code_of(t.dtype())}, {"shape", t.shape().vec()}, {"data_offsets", {at, at + t.nbytes()}}};
    at += t.nbytes();
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // data starts 8-byte aligned
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[static_cast<std::size_t>(i)] = static_cast<char>((text.size() >> (8 * i)) & 0xff);
  out += text;
  out.reserve(out.size() + at);
  for (const auto& [name, t] : tensors) out.append(static_cast<const char*>(t.raw_data()), t.nbytes());
  return out;
}

void save_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  write_file_atomic(path, serialize_safetensors(tensors, metadata));
}

}  // namespace kiln::io
