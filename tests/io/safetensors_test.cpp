#include <filesystem>

#include <gtest/gtest.h>

#include "io/atomic_file.hpp"
#include "io/safetensors.hpp"
#include "tensor/random.hpp"

namespace kiln::io {
namespace {

const std::string kGolden = std::string(KILN_SOURCE_DIR) + "/tests/golden/pytorch";

std::map<std::string, Tensor> sample() {
  return {{"a.weight", randn({3, 4})},
          {"b", randn({5}, kFloat64)},
          {"ids", from_data(std::vector<std::int64_t>{1, -2, 3})},
          {"mask", from_data(std::vector<bool>{true, false})},
          {"scalar", scalar_tensor(2.5, kFloat64)},
          {"empty", zeros({0, 3})}};
}

TEST(Safetensors, RoundTripsEveryDtypeAndMetadata) {
  const auto tensors = sample();
  const std::string path = ::testing::TempDir() + "/kiln_roundtrip.safetensors";
  save_safetensors(path, tensors, {{"module", "nn.LSTM"}, {"hidden_size", "6"}});
  const Safetensors back = load_safetensors(path);
  ASSERT_EQ(back.tensors.size(), tensors.size());
  for (const auto& [name, t] : tensors) EXPECT_TRUE(equal(back.tensors.at(name), t)) << name;
  EXPECT_EQ(back.metadata.at("module"), "nn.LSTM");
  EXPECT_EQ(back.metadata.at("hidden_size"), "6");
}

TEST(Safetensors, DataIsEightByteAligned) {
  const std::string bytes = serialize_safetensors(sample());
  std::uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[static_cast<std::size_t>(i)]);
  EXPECT_EQ((8 + n) % 8, 0u);
}

TEST(Safetensors, ReadsPyTorchReferenceCases) {
  const Safetensors s = load_safetensors(kGolden + "/lstm_1layer.safetensors");
  EXPECT_EQ(s.metadata.at("module"), "nn.LSTM");
  EXPECT_EQ(s.tensors.at("param.weight_ih_l0").shape(), (Shape{24, 4}));
  EXPECT_EQ(s.tensors.at("param.weight_ih_l0").dtype(), kFloat64);
  const Safetensors m = load_safetensors(kGolden + "/mha_causal.safetensors");
  const Tensor mask = m.tensors.at("input.attn_mask");
  EXPECT_EQ(mask.dtype(), kBool);
  EXPECT_EQ(mask.to_vector()[1], 1.0);  // causal: query 0 may not attend key 1
  EXPECT_EQ(mask.to_vector()[5], 0.0);
  const Safetensors l = load_safetensors(kGolden + "/lstm_lengths.safetensors");
  EXPECT_EQ(l.tensors.at("input.lengths").to_vector(), (std::vector<double>{6, 3, 1}));
}

TEST(Safetensors, VendoredReferencesMatchShared) {
  const std::filesystem::path shared = std::filesystem::path(KILN_SOURCE_DIR) / ".." / "shared" / "golden" / "pytorch";
  if (!std::filesystem::exists(shared)) GTEST_SKIP() << "no ../shared beside the checkout to compare with";
  for (const auto& entry : std::filesystem::directory_iterator(kGolden)) {
    const auto other = shared / entry.path().filename();
    ASSERT_TRUE(std::filesystem::exists(other)) << other;
    EXPECT_EQ(read_file(entry.path().string()), read_file(other.string())) << entry.path().filename();
  }
}

void expect_refused(const std::string& bytes, const std::string& needle) {
  try {
    parse_safetensors(bytes, "case");
    ADD_FAILURE() << "accepted a bad file; expected an error mentioning '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

std::string with_header(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[static_cast<std::size_t>(i)] = static_cast<char>((header.size() >> (8 * i)) & 0xff);
  return out + header + data;
}

TEST(Safetensors, EveryTruncationIsRefused) {
  const std::string bytes = serialize_safetensors({{"w", randn({4, 3})}, {"b", randn({3}, kFloat64)}});
  for (std::size_t n = 0; n < bytes.size(); ++n) EXPECT_THROW(parse_safetensors(bytes.substr(0, n), "cut"), Error) << n;
  EXPECT_NO_THROW(parse_safetensors(bytes, "whole"));
}

TEST(Safetensors, CorruptedBytesNeverCrash) {
  const std::string bytes = serialize_safetensors({{"w", randn({4, 3})}, {"ids", from_data(std::vector<std::int64_t>{1, 2})}});
  Generator g(9);
  int refused = 0;
  for (int trial = 0; trial < 2000; ++trial) {
    std::string bad = bytes;
    const int flips = 1 + static_cast<int>(g.next_u64() % 4);
    for (int f = 0; f < flips; ++f) bad[g.next_u64() % bad.size()] = static_cast<char>(g.next_u64());
    try {
      parse_safetensors(bad, "fuzz");  // a flip in the data section still parses: that is fine
    } catch (const Error&) {
      ++refused;
    }
  }
  EXPECT_GT(refused, 100);
}

TEST(Safetensors, HostileHeadersAreRefused) {
  expect_refused("abc", "shorter than the 8-byte");
  expect_refused(std::string("\xff\xff\xff\xff\xff\xff\xff\x7f", 8) + "{}", "exceeds");
  expect_refused(with_header("{}", "") + "x", "bytes of data follow");
  expect_refused(with_header("{\"a\":", ""), "not valid JSON");
  expect_refused(with_header("[1,2]", ""), "JSON object");
  expect_refused(with_header(R"({"a":{"dtype":"F16","shape":[1],"data_offsets":[0,2]}})", "xx"), "unsupported dtype");
  expect_refused(with_header(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", "xxxx"), "invalid dimension");
  expect_refused(with_header(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", "xxxx"), "span 4 bytes");
  expect_refused(with_header(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,400]}})", "xxxx"), "outside");
  expect_refused(with_header(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}})", "xxxx"), "outside");
  expect_refused(with_header(R"({"a":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,8]}})", "xxxxxxxx"),
                 "too large");
  expect_refused(with_header(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})",
                             "xxxx"), "overlap or gap");
  expect_refused(with_header(R"({"a":{"dtype":"F32","shape":[1]}})", "xxxx"), "needs dtype, shape and data_offsets");
  expect_refused(with_header(R"({"__metadata__":{"k":1}})", ""), "not a string");
  expect_refused(with_header(R"({"a":{"dtype":"F32","shape":[1,1,1,1,1,1,1,1,1],"data_offsets":[0,4]}})", "xxxx"),
                 "invalid shape");
}

// Issue 17's crashes, each a regression test.
TEST(Safetensors, DeeplyNestedValuesAreRefusedWithoutRecursing) {
  // 100,000 levels of [ in dtype, shape or data_offsets: the message must not dump() them (one stack frame a level).
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  for (const std::string& field : {"dtype", "shape", "data_offsets"}) {
    std::string header = R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})";
    const std::string key = "\"" + field + "\":";
    const auto at = header.find(key) + key.size();
    const auto end = field == "dtype" ? header.find(',', at) : header.find(']', at) + 1;
    header.replace(at, end - at, deep);
    expect_refused(with_header(header, "xxxx"), field == "dtype" ? "unsupported dtype [[[[...]" : "invalid");
  }
}

TEST(Safetensors, OutOfRangeNumbersAreRefused) {
  expect_refused(with_header(R"({"x": 1e999})", ""), "not valid JSON");
  expect_refused(with_header(R"({"a":{"dtype":"F32","shape":[1e999],"data_offsets":[0,4]}})", "xxxx"), "not valid JSON");
}

TEST(Safetensors, EmptyTensorsAnywhereReload) {
  // Kiln's own file with empty tensors sorted among the others, and an empty tensor first.
  const std::map<std::string, Tensor> tensors{{"t000", zeros({0})}, {"t001", ones({2})}, {"t002", zeros({0, 4})}, {"t003", ones({1})}};
  const Safetensors back = parse_safetensors(serialize_safetensors(tensors), "mem");
  ASSERT_EQ(back.tensors.size(), 4u);
  for (const auto& [name, t] : tensors) EXPECT_TRUE(equal(back.tensors.at(name), t)) << name;
  EXPECT_NO_THROW(parse_safetensors(
      with_header(R"({"e":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", "xxxx"),
      "mem"));
}

TEST(Safetensors, DuplicateKeysAreRefused) {
  expect_refused(with_header(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})",
                             "xxxx"), "names 'a' twice");
  expect_refused(with_header(R"({"a":{"dtype":"F32","dtype":"F64","shape":[1],"data_offsets":[0,4]}})", "xxxx"), "names 'dtype' twice");
}

TEST(Safetensors, AZeroDimensionDoesNotHideHugeOnes) {
  expect_refused(with_header(R"({"a":{"dtype":"F32","shape":[0,4611686018427387904,4611686018427387904],"data_offsets":[0,0]}})", ""),
                 "too large to address");
}

TEST(Safetensors, MissingFileNamesThePath) {
  try {
    load_safetensors("/no/such/file.safetensors");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/no/such/file.safetensors"), std::string::npos);
  }
}

}  // namespace
}  // namespace kiln::io
