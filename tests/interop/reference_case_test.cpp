// Every RNN, LSTM and GRU case in the PyTorch references matches: float64 to 1e-8 relative, float32
// to 1e-4.

#include <filesystem>

#include <gtest/gtest.h>

#include "interop/reference_case.hpp"
#include "io/safetensors.hpp"

namespace kiln::interop {
namespace {

const std::string kGolden = std::string(KILN_SOURCE_DIR) + "/tests/golden/pytorch/";

// Listed explicitly, so a case that went missing fails instead of being skipped.
const std::vector<std::string> kRecurrentCases{"rnn_tanh_1layer", "lstm_1layer", "lstm_2layer_bidir", "lstm_lengths",
                                               "gru_1layer", "gru_2layer_bidir_timemajor"};

class ReferenceCases : public ::testing::TestWithParam<std::string> {};

TEST_P(ReferenceCases, Float64) {
  const CaseReport r = run_reference_case(kGolden + GetParam() + ".safetensors", kFloat64);
  EXPECT_GE(r.rows.size(), 9u);
  for (const auto& row : r.rows)
    EXPECT_TRUE(row.ok) << row.name << ": rel " << row.max_rel_error << " abs " << row.max_abs_error << " " << row.problem;
}

TEST_P(ReferenceCases, GenericGraphFloat64) {
  const CaseReport r = run_reference_case(kGolden + GetParam() + ".safetensors", kFloat64, "generic");
  EXPECT_NE(r.module.find("[generic graph]"), std::string::npos);
  for (const auto& row : r.rows) EXPECT_TRUE(row.ok) << row.name << ": rel " << row.max_rel_error << " " << row.problem;
}

// Every RNN, LSTM and GRU case runs on the built-in fused kernels too.
TEST_P(ReferenceCases, FusedKernels) {
  const std::string path = kGolden + GetParam() + ".safetensors";
  for (DType dt : {kFloat64, kFloat32}) {
    const CaseReport r = run_reference_case(path, dt, "fused");
    EXPECT_NE(r.module.find("[fused kernel]"), std::string::npos);
    for (const auto& row : r.rows) EXPECT_TRUE(row.ok) << dtype_name(dt) << " " << row.name << ": rel " << row.max_rel_error;
  }
}

TEST_P(ReferenceCases, Float32) {
  const CaseReport r = run_reference_case(kGolden + GetParam() + ".safetensors", kFloat32);
  for (const auto& row : r.rows) EXPECT_LE(row.max_rel_error, 1e-4) << row.name << " " << row.problem;
  EXPECT_TRUE(r.ok());
}

INSTANTIATE_TEST_SUITE_P(PyTorch, ReferenceCases, ::testing::ValuesIn(kRecurrentCases));

// A case may name any registered cell ("kiln.Recurrent" with metadata 'cell'): the LSTM case, told it
// is the registered cell "lstm", matches as nn.LSTM does; an unknown cell is refused, naming the file.
TEST(ReferenceCases, AnyRegisteredCellByName) {
  io::Safetensors file = io::load_safetensors(kGolden + "lstm_1layer.safetensors");
  file.metadata["module"] = "kiln.Recurrent";
  file.metadata["cell"] = "lstm";
  const std::string path = ::testing::TempDir() + "kiln_recurrent_lstm.safetensors";
  io::save_safetensors(path, file.tensors, file.metadata);
  for (const char* impl : {"generic", "fused"}) {
    const CaseReport r = run_reference_case(path, kFloat64, impl);
    EXPECT_TRUE(r.ok()) << impl;
    EXPECT_NE(r.module.find("kiln.Recurrent"), std::string::npos) << r.module;
  }
  file.metadata["cell"] = "lstn";
  io::save_safetensors(path, file.tensors, file.metadata);
  try {
    run_reference_case(path, kFloat64);
    ADD_FAILURE() << "an unknown cell was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("unknown cell 'lstn' (did you mean 'lstm'?)"), std::string::npos) << e.what();
  }
}

// Multi-head attention and Transformer layers (generic graph only).
const std::vector<std::string> kAttentionCases{"mha_causal", "encoder_layer_post_norm", "decoder_layer_post_norm"};

class AttentionCases : public ::testing::TestWithParam<std::string> {};

TEST_P(AttentionCases, Float64AndFloat32) {
  for (DType dt : {kFloat64, kFloat32}) {
    const CaseReport r = run_reference_case(kGolden + GetParam() + ".safetensors", dt);
    EXPECT_GE(r.rows.size(), 10u);
    // The layers run the fused attention kernel; MultiheadAttention returns weights with gradients, so generic.
    EXPECT_NE(r.module.find(GetParam() == "mha_causal" ? "[generic graph]" : "[fused attention]"), std::string::npos) << r.module;
    for (const auto& row : r.rows)
      EXPECT_TRUE(row.ok) << dtype_name(dt) << " " << row.name << ": rel " << row.max_rel_error << " " << row.problem;
  }
}

TEST_P(AttentionCases, GenericGraph) {
  const CaseReport r = run_reference_case(kGolden + GetParam() + ".safetensors", kFloat64, "generic");
  EXPECT_NE(r.module.find("[generic graph]"), std::string::npos) << r.module;
  for (const auto& row : r.rows) EXPECT_TRUE(row.ok) << row.name << ": rel " << row.max_rel_error << " " << row.problem;
}

INSTANTIATE_TEST_SUITE_P(PyTorch, AttentionCases, ::testing::ValuesIn(kAttentionCases));

TEST(ReferenceCases, TransformerLayersOnTheFusedKernel) {
  for (const char* c : {"encoder_layer_post_norm", "decoder_layer_post_norm"}) {
    const CaseReport r = run_reference_case(kGolden + c + ".safetensors", kFloat64, "fused");
    EXPECT_TRUE(r.ok()) << c;
  }
}

TEST(ReferenceCases, EveryCaseIsListed) {
  for (const auto& entry : std::filesystem::directory_iterator(kGolden)) {
    if (entry.path().extension() != ".safetensors") continue;
    const std::string stem = entry.path().stem().string();
    const bool listed = std::count(kRecurrentCases.begin(), kRecurrentCases.end(), stem) +
                        std::count(kAttentionCases.begin(), kAttentionCases.end(), stem);
    EXPECT_TRUE(listed) << entry.path() << " is not run by any test";
  }
}

TEST(ReferenceCases, EveryRecurrentCaseIsListed) {
  for (const auto& entry : std::filesystem::directory_iterator(kGolden)) {
    if (entry.path().extension() != ".safetensors") continue;
    const std::string module = io::load_safetensors(entry.path().string()).metadata.at("module");
    const bool recurrent = module == "nn.RNN" || module == "nn.LSTM" || module == "nn.GRU";
    const bool listed = std::find(kRecurrentCases.begin(), kRecurrentCases.end(), entry.path().stem().string()) !=
                        kRecurrentCases.end();
    EXPECT_EQ(recurrent, listed) << entry.path();
  }
}

TEST(ReferenceCases, WrongParametersAreCaught) {
  // A case whose weights are perturbed must not match: the comparison has teeth.
  io::Safetensors c = io::load_safetensors(kGolden + "lstm_1layer.safetensors");
  Tensor w = c.tensors.at("param.weight_hh_l0").clone();
  w.data<double>()[3] += 1e-3;
  c.tensors["param.weight_hh_l0"] = w;
  const std::string path = ::testing::TempDir() + "/kiln_perturbed.safetensors";
  io::save_safetensors(path, c.tensors, c.metadata);
  const CaseReport r = run_reference_case(path, kFloat64);
  EXPECT_FALSE(r.ok());
}

TEST(ReferenceCases, UnsupportedModuleAndMissingKeysAreClearErrors) {
  io::Safetensors conv = io::load_safetensors(kGolden + "rnn_tanh_1layer.safetensors");
  conv.metadata["module"] = "nn.Conv1d";
  const std::string conv_path = ::testing::TempDir() + "/kiln_conv.safetensors";
  io::save_safetensors(conv_path, conv.tensors, conv.metadata);
  try {
    run_reference_case(conv_path);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("module 'nn.Conv1d' is not supported yet"), std::string::npos);
  }
  try {
    run_reference_case(kGolden + "mha_causal.safetensors", kFloat64, "fused");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("impl Fused, but the attention weights are asked for"), std::string::npos) << e.what();
  }
  io::Safetensors c = io::load_safetensors(kGolden + "gru_1layer.safetensors");
  c.tensors.erase("param.bias_hh_l0");
  const std::string path = ::testing::TempDir() + "/kiln_missing.safetensors";
  io::save_safetensors(path, c.tensors, c.metadata);
  try {
    run_reference_case(path);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing keys: bias_hh_l0"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace kiln::interop
