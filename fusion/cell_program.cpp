// compile_cell: a cell's traced step into projections and a row program (Note [Cell programs]).

#include "fusion/cell_program.hpp"

#include <algorithm>
#include <map>

#include <fmt/format.h>

#include "autograd/grad_mode.hpp"
#include "autograd/graph.hpp"
#include "autograd/tape.hpp"
#include "tensor/error.hpp"
#include "tensor/random.hpp"

namespace kiln::plugins {

const char* opcode_name(Opcode op) {
  switch (op) {
    case Opcode::LoadProjection: return "projection";
    case Opcode::LoadState: return "state";
    case Opcode::LoadParam: return "param";
    case Opcode::Constant: return "constant";
    case Opcode::Slice: return "slice";
    case Opcode::Concat: return "concat";
    case Opcode::Add: return "add";
    case Opcode::Sub: return "sub";
    case Opcode::Mul: return "mul";
    case Opcode::Div: return "div";
    case Opcode::Neg: return "neg";
    case Opcode::Sigmoid: return "sigmoid";
    case Opcode::Tanh: return "tanh";
    case Opcode::Relu: return "relu";
    case Opcode::Exp: return "exp";
    case Opcode::Log: return "log";
    case Opcode::Sqrt: return "sqrt";
    case Opcode::Abs: return "abs";
    case Opcode::Pow: return "pow";
    case Opcode::Clamp: return "clamp";
    case Opcode::Normalize: return "normalize";
  }
  return "?";
}

std::string CellProgram::listing() const {
  std::string s;
  for (const auto& i : code) {
    const Register& r = regs[static_cast<std::size_t>(i.dst)];
    s += fmt::format("r{} [{}{}] = {}", i.dst, r.width, r.shared ? ", shared" : "", opcode_name(i.op));
    if (i.op == Opcode::LoadProjection) {
      const Projection& p = projections[static_cast<std::size_t>(i.a)];
      s += fmt::format(" {} of {}", p.weight, p.source == -1 ? std::string("x") : p.source >= 0 ? fmt::format("state{}", p.source)
                                                                                                   : fmt::format("r{}", p.source_reg));
    } else if (i.op == Opcode::LoadState) {
      s += fmt::format(" {}", i.a);
    } else if (i.op == Opcode::LoadParam) {
      s += " " + params[static_cast<std::size_t>(i.a)];
    } else if (i.op == Opcode::Constant) {
      s += fmt::format(" {}", i.imm);
    } else {
      if (i.a >= 0) s += fmt::format(" r{}", i.a);
      if (i.b >= 0) s += fmt::format(" r{}", i.b);
      if (i.op == Opcode::Slice) s += fmt::format(" at {}", i.offset);
    }
    if (i.stage > 0) s += fmt::format("  (stage {})", i.stage);
    s += "\n";
  }
  for (std::size_t k = 0; k < outputs.size(); ++k) s += fmt::format("state{}' = r{}\n", k, outputs[k]);
  return s;
}

namespace {

struct Stop {
  std::string why;
};

using Vertex = OpGraph::vertex_descriptor;

class Compiler {
 public:
  Compiler(const OpGraph& g, std::map<Vertex, std::string> roles, CellProgram& p) : g_(g), roles_(std::move(roles)), p_(p) {}

  int reg_of(Vertex v) {
    if (const auto it = reg_.find(v); it != reg_.end()) return it->second;
    const int r = make(v);
    reg_[v] = r;
    return r;
  }

 private:
  std::vector<Vertex> operands(Vertex v) const {
    std::vector<Vertex> in(boost::in_degree(v, g_));
    for (auto e : boost::make_iterator_range(boost::in_edges(v, g_))) in.at(static_cast<std::size_t>(g_[e].operand)) = boost::source(e, g_);
    return in;
  }
  bool rowwise(const Shape& s) const { return s.rank() == 2 && s[0] == 2; }  // the trace's batch is 2
  std::string describe(Vertex v) const {
    const OpVertex& o = g_[v];
    if (o.kind == VertexKind::Leaf) return roles_.at(v);
    return fmt::format("{} {}", o.op, o.shape);
  }
  int add_reg(std::int64_t width, bool shared) {
    p_.regs.push_back(Register{width, shared, 0});
    return static_cast<int>(p_.regs.size()) - 1;
  }
  // An instruction runs in the latest stage of its operands (a late projection's load: one after its source's).
  int emit(Instr i, std::int64_t width, bool shared) {
    for (int r : {i.a, i.b})
      if (r >= 0 && i.op != Opcode::LoadProjection && i.op != Opcode::LoadState && i.op != Opcode::LoadParam)
        i.stage = std::max(i.stage, stage_.at(static_cast<std::size_t>(r)));
    i.dst = add_reg(width, shared);
    stage_.push_back(i.stage);
    p_.code.push_back(i);
    return i.dst;
  }
  // A parameter named by `v` (a leaf, or a slice of one along its first dim): name, first row, rows.
  bool param_rows(Vertex v, std::string* name, std::int64_t* row0, std::int64_t* rows) const {
    const OpVertex& o = g_[v];
    if (o.kind == VertexKind::Leaf && is_param(roles_.at(v))) {
      *name = roles_.at(v), *row0 = 0, *rows = o.shape[0];
      return true;
    }
    if (o.kind == VertexKind::Op && o.op == "slice" && o.attrs.size() == 3 && o.attrs[0] == 0 && o.attrs[2] == 1) {
      const Vertex base = operands(v).at(0);
      if (g_[base].kind == VertexKind::Leaf && is_param(roles_.at(base))) {
        *name = roles_.at(base), *row0 = static_cast<std::int64_t>(o.attrs[1]), *rows = o.shape[0];
        return true;
      }
    }
    return false;
  }
  static bool is_param(const std::string& role) { return role != "x" && role.rfind("state", 0) != 0 && role != "other"; }

  int projection(Vertex v) {
    const auto in = operands(v);
    const Vertex src = in.at(0);
    Projection pr;
    const OpVertex& s = g_[src];
    if (s.kind == VertexKind::Leaf && roles_.at(src) == "x") {
      pr.source = -1;
    } else if (s.kind == VertexKind::Leaf && roles_.at(src).rfind("state", 0) == 0) {
      pr.source = std::stoi(roles_.at(src).substr(5));
    } else {  // a late projection: of a value computed in the step, one GEMM between program stages
      pr.source = Projection::kComputed;
      pr.source_reg = reg_of(src);
      const Register& r = p_.regs[static_cast<std::size_t>(pr.source_reg)];
      if (r.shared) throw Stop{fmt::format("linear over a value every row shares ({})", describe(src))};
      pr.stage = stage_.at(static_cast<std::size_t>(pr.source_reg)) + 1;
    }
    if (!param_rows(in.at(1), &pr.weight, &pr.row0, &pr.rows))
      throw Stop{fmt::format("linear whose weight is {}, not a parameter or rows of one", describe(in.at(1)))};
    if (in.size() > 2) {
      std::int64_t rows = 0;
      if (!param_rows(in.at(2), &pr.bias, &pr.bias0, &rows))
        throw Stop{fmt::format("linear whose bias is {}, not a parameter or part of one", describe(in.at(2)))};
    }
    p_.projections.push_back(pr);
    Instr i{Opcode::LoadProjection};
    i.a = static_cast<int>(p_.projections.size()) - 1;
    i.stage = pr.stage;
    return emit(i, pr.rows, false);
  }

  int make(Vertex v) {
    const OpVertex& o = g_[v];
    if (o.kind == VertexKind::Constant) {
      if (!o.value.defined() || o.value.numel() != 1)
        throw Stop{fmt::format("a constant tensor of shape {} (only numbers are compiled)", o.shape)};
      Instr i{Opcode::Constant};
      i.imm = o.value.to_vector().at(0);
      return emit(i, 1, true);
    }
    if (o.kind == VertexKind::Leaf) {
      const std::string& role = roles_.at(v);
      if (role == "x") throw Stop{"the input x is used outside a linear (the compiler reads x only through projections)"};
      if (role.rfind("state", 0) == 0) {
        Instr i{Opcode::LoadState};
        i.a = std::stoi(role.substr(5));
        return emit(i, p_.hidden_size, false);
      }
      if (role == "other") throw Stop{fmt::format("a tensor of shape {} that is neither input, state nor parameter", o.shape)};
      p_.params.push_back(role);
      p_.param_sizes.push_back(o.shape.numel());
      Instr i{Opcode::LoadParam};
      i.a = static_cast<int>(p_.params.size()) - 1;
      return emit(i, o.shape.numel(), true);
    }
    if (o.op == "linear") return projection(v);
    const auto in = operands(v);
    if (o.op == "slice") {
      const int base = reg_of(in.at(0));
      const Register b = p_.regs[static_cast<std::size_t>(base)];
      const Shape& s = g_[in.at(0)].shape;
      const int d = static_cast<int>(o.attrs.at(0));
      const auto start = static_cast<std::int64_t>(o.attrs.at(1));
      if (o.attrs.at(2) != 1) throw Stop{fmt::format("a strided slice (step {}) of {}", o.attrs[2], s)};
      std::int64_t offset = 0, width = 0;
      if (!b.shared && rowwise(s) && d == 1) {
        offset = start, width = o.shape[1];
      } else if (b.shared && d == 0) {  // rows of a parameter: a contiguous range
        const std::int64_t inner = s.rank() > 1 ? s.numel() / s[0] : 1;
        offset = start * inner, width = o.shape.numel();
      } else {
        throw Stop{fmt::format("a slice along dim {} of {} (only along a row's values, or a parameter's rows)", d, s)};
      }
      Instr i{Opcode::Slice};
      i.a = base, i.offset = offset;
      return emit(i, width, b.shared);
    }
    if (o.op == "concat") {  // along a row's values; more than two pieces as a chain of pairs
      if (in.size() < 2 || o.attrs.empty() || o.attrs[0] != 1 || !rowwise(o.shape))
        throw Stop{fmt::format("a concat of {} tensors into {} (only along a row's values)", in.size(), o.shape)};
      int acc = reg_of(in[0]);
      for (std::size_t k = 1; k < in.size(); ++k) {
        const int b = reg_of(in[k]);
        if (p_.regs[static_cast<std::size_t>(acc)].shared || p_.regs[static_cast<std::size_t>(b)].shared)
          throw Stop{"a concat of a value every row shares"};
        Instr i{Opcode::Concat};
        i.a = acc, i.b = b;
        acc = emit(i, p_.regs[static_cast<std::size_t>(acc)].width + p_.regs[static_cast<std::size_t>(b)].width, false);
      }
      return acc;
    }
    static const std::map<std::string, Opcode> binary{{"add", Opcode::Add}, {"sub", Opcode::Sub}, {"mul", Opcode::Mul}, {"div", Opcode::Div}};
    static const std::map<std::string, Opcode> unary{{"neg", Opcode::Neg},   {"sigmoid", Opcode::Sigmoid}, {"tanh", Opcode::Tanh},
                                                     {"relu", Opcode::Relu}, {"exp", Opcode::Exp},         {"log", Opcode::Log},
                                                     {"sqrt", Opcode::Sqrt}, {"abs", Opcode::Abs},         {"pow", Opcode::Pow},
                                                     {"clamp", Opcode::Clamp}};
    const bool row_shape = rowwise(o.shape);
    if (const auto it = binary.find(o.op); it != binary.end() && in.size() == 2) {
      const int a = reg_of(in[0]), b = reg_of(in[1]);
      const Register ra = p_.regs[static_cast<std::size_t>(a)], rb = p_.regs[static_cast<std::size_t>(b)];
      const std::int64_t width = std::max(ra.width, rb.width);
      if ((ra.width != width && ra.width != 1) || (rb.width != width && rb.width != 1))
        throw Stop{fmt::format("'{}' of {} and {}: broadcasting beyond a row's values", o.op, describe(in[0]), describe(in[1]))};
      const bool shared = ra.shared && rb.shared;
      if (!shared && !row_shape) throw Stop{fmt::format("'{}' makes {}, not one vector per row", o.op, o.shape)};
      Instr i{it->second};
      i.a = a, i.b = b;
      return emit(i, width, shared);
    }
    if (const auto it = unary.find(o.op); it != unary.end() && in.size() == 1) {
      const int a = reg_of(in[0]);
      const Register ra = p_.regs[static_cast<std::size_t>(a)];
      Instr i{it->second};
      i.a = a;
      if (it->second == Opcode::Pow) i.imm = o.attrs.at(0);
      if (it->second == Opcode::Clamp) i.imm = o.attrs.at(0), i.imm2 = o.attrs.at(1);
      return emit(i, ra.width, ra.shared);
    }
    if (o.op == "layer_norm") return layer_norm(v, in);
    throw Stop{fmt::format("op '{}' (making {}) is not one the compiler knows (projections, slices, concat, elementwise "
                           "arithmetic, activations and layer_norm over a row)", o.op, o.shape)};
  }

  // layer_norm over a row's values: Normalize (keeping the row's 1 / std for backward), then times its
  // weight and plus its bias, each a vector every row shares (ops/nn.cpp notes eps and which it has).
  int layer_norm(Vertex v, const std::vector<Vertex>& in) {
    const OpVertex& o = g_[v];
    if (o.attrs.size() != 3) throw Stop{fmt::format("layer_norm making {} was traced without its eps", o.shape)};
    const int a = reg_of(in.at(0));
    const Register ra = p_.regs[static_cast<std::size_t>(a)];
    if (ra.shared || !rowwise(o.shape) || ra.width != o.shape[1])
      throw Stop{fmt::format("layer_norm making {} of {}: only over all of one row's values", o.shape, describe(in.at(0)))};
    const int rstd = add_reg(1, false);
    stage_.push_back(stage_.at(static_cast<std::size_t>(a)));
    Instr n{Opcode::Normalize};
    n.a = a, n.b = rstd, n.imm = o.attrs[0];
    int y = emit(n, ra.width, false);
    std::size_t next = 1;
    for (const auto [present, op] : {std::pair{o.attrs[1] != 0, Opcode::Mul}, std::pair{o.attrs[2] != 0, Opcode::Add}}) {
      if (!present) continue;
      const int w = reg_of(in.at(next++));
      if (!p_.regs[static_cast<std::size_t>(w)].shared || p_.regs[static_cast<std::size_t>(w)].width != ra.width)
        throw Stop{fmt::format("layer_norm making {}: its {} is not a vector every row shares", o.shape, op == Opcode::Mul ? "weight" : "bias")};
      Instr i{op};
      i.a = y, i.b = w;
      y = emit(i, ra.width, false);
    }
    return y;
  }

  const OpGraph& g_;
  std::map<Vertex, std::string> roles_;
  CellProgram& p_;
  std::map<Vertex, int> reg_;
  std::vector<int> stage_;  // each register's stage
};

// Shared instructions first (they depend on shared registers only), then storage: each register that is
// not a view gets its own range of the row block or the shared block; a slice lives in its base.
void lay_out(CellProgram& p) {
  std::vector<Instr> shared, rows;
  for (const Instr& i : p.code) (p.regs[static_cast<std::size_t>(i.dst)].shared ? shared : rows).push_back(i);
  // Stage by stage (an instruction's stage is at least its operands', so the order within one holds).
  std::stable_sort(rows.begin(), rows.end(), [](const Instr& a, const Instr& b) { return a.stage < b.stage; });
  p.stages = rows.empty() ? 1 : rows.back().stage + 1;
  p.shared_code = shared.size();
  p.code = shared;
  p.code.insert(p.code.end(), rows.begin(), rows.end());
  // The values a derivative rule reads (an activation's output, a product's factors, ...) are saved; a
  // slice's need is its base's.
  std::vector<bool> needed(p.regs.size());
  for (const Instr& i : p.code) {
    switch (i.op) {
      case Opcode::Mul: case Opcode::Div: needed[static_cast<std::size_t>(i.a)] = needed[static_cast<std::size_t>(i.b)] = true; break;
      case Opcode::Log: case Opcode::Abs: case Opcode::Pow: case Opcode::Clamp: needed[static_cast<std::size_t>(i.a)] = true; break;
      case Opcode::Sigmoid: case Opcode::Tanh: case Opcode::Exp: case Opcode::Relu: case Opcode::Sqrt:
        needed[static_cast<std::size_t>(i.dst)] = true;
        break;
      case Opcode::Normalize: needed[static_cast<std::size_t>(i.dst)] = needed[static_cast<std::size_t>(i.b)] = true; break;
      default: break;
    }
  }
  // A value a later stage reads, or a late projection's input, must outlive its row's pass: saved too.
  std::vector<int> made_in(p.regs.size(), 0);
  for (const Instr& i : p.code) made_in[static_cast<std::size_t>(i.dst)] = i.stage;
  for (const Instr& i : p.code)
    for (int r : {i.a, i.b})
      if (r >= 0 && i.op != Opcode::LoadProjection && i.op != Opcode::LoadState && i.op != Opcode::LoadParam && made_in[static_cast<std::size_t>(r)] < i.stage)
        needed[static_cast<std::size_t>(r)] = true;
  for (const Projection& pr : p.projections)
    if (pr.source_reg >= 0) needed[static_cast<std::size_t>(pr.source_reg)] = true;
  // Note [Saved slices]: a slice backward reads is a view of its base, so saving it saved the whole base
  // (GRU's W_hn h + b_hn saved all three gates' recurrent projections). When backward reads nothing else
  // of the base, the slices it reads are kept as copies of their own instead (one copy per row and step
  // in forward) and the base stays scratch; their gradients are still views of the base's.
  std::vector<bool> is_slice(p.regs.size()), copied(p.regs.size());
  std::vector<std::int64_t> sliced(p.regs.size(), 0);
  for (const Instr& i : p.code) is_slice[static_cast<std::size_t>(i.dst)] = i.op == Opcode::Slice;
  for (const Instr& i : p.code)
    if (i.op == Opcode::Slice && needed[static_cast<std::size_t>(i.dst)]) sliced[static_cast<std::size_t>(i.a)] += p.regs[static_cast<std::size_t>(i.dst)].width;
  for (std::size_t c = p.code.size(); c-- > 0;) {
    const Instr& i = p.code[c];
    if (i.op != Opcode::Slice || !needed[static_cast<std::size_t>(i.dst)]) continue;
    const auto base = static_cast<std::size_t>(i.a);
    if (!needed[base] && !p.regs[base].shared && !is_slice[base] && sliced[base] < p.regs[base].width)
      copied[static_cast<std::size_t>(i.dst)] = true;
    else
      needed[base] = true;
  }
  for (const Instr& i : p.code) {
    Register& r = p.regs[static_cast<std::size_t>(i.dst)];
    if (i.op == Opcode::Slice) {
      const Register& base = p.regs[static_cast<std::size_t>(i.a)];
      r.grad_offset = base.grad_offset + i.offset;
      if (copied[static_cast<std::size_t>(i.dst)]) {  // Note [Saved slices]
        r.copy = true, r.scratch = false, r.offset = p.row_size;
        p.row_size += r.width;
      } else {
        r.offset = base.offset + i.offset, r.scratch = base.scratch;
      }
      continue;
    }
    for (int k : {i.dst, i.op == Opcode::Normalize ? i.b : -1}) {  // a normalisation's 1 / std is its second result
      if (k < 0) continue;
      Register& out = p.regs[static_cast<std::size_t>(k)];
      out.scratch = !out.shared && !needed[static_cast<std::size_t>(k)];
      std::int64_t& size = out.shared ? p.shared_size : out.scratch ? p.scratch_size : p.row_size;
      out.offset = size;
      size += out.width;
      if (!out.shared) out.grad_offset = p.grad_size, p.grad_size += out.width;
    }
  }
}

}  // namespace

CellProgram compile_cell(nn::RecurrentCell& original) {
  CellProgram p;
  p.cell = original.class_name();
  p.input_size = original.input_size();
  p.hidden_size = original.hidden_size();
  p.states = original.state_size();
  // Trace a float64 copy with the op details kept.
  const auto copy = std::dynamic_pointer_cast<nn::RecurrentCell>(original.clone());
  KILN_CHECK(copy != nullptr, "compile_cell: {}'s clone is not a RecurrentCell", p.cell);
  copy->to(kFloat64);
  AutoGradMode grad_on(true);
  TraceDetails details;
  Generator gen(7);
  Variable x(uniform({2, p.input_size}, -1, 1, kFloat64, &gen), true);
  nn::State state;
  for (std::size_t s = 0; s < p.states; ++s) state.emplace_back(uniform({2, p.hidden_size}, -1, 1, kFloat64, &gen), true);
  nn::State next;
  try {
    next = copy->step(x, state);
  } catch (const Error& e) {
    p.stopped = fmt::format("its step failed while being traced: {}", e.what());
    return p;
  }
  std::vector<Variable> roots;
  for (const Variable& n : next) {
    if (!n.requires_grad()) {
      p.stopped = "a next state does not depend on the input, the state or a parameter";
      return p;
    }
    roots.push_back(n);
  }
  const OpGraph g = tape_graph(roots);
  std::map<const void*, std::string> leaves{{x.meta().get(), "x"}};
  for (std::size_t s = 0; s < state.size(); ++s) leaves[state[s].meta().get()] = fmt::format("state{}", s);
  for (const auto& [name, param] : copy->named_parameters(false)) leaves[param.meta().get()] = name;
  std::map<Vertex, std::string> roles;
  for (auto v : boost::make_iterator_range(boost::vertices(g))) {
    if (g[v].kind == VertexKind::Op) ++p.ops;
    if (g[v].kind == VertexKind::Leaf) {
      const auto it = leaves.find(g[v].leaf);
      roles[v] = it != leaves.end() ? it->second : "other";
    }
  }
  Compiler c(g, roles, p);
  try {
    for (const Variable& n : next) {
      Vertex out = 0;
      bool found = false;
      for (auto v : boost::make_iterator_range(boost::vertices(g)))
        if (g[v].kind == VertexKind::Op && g[v].node == n.meta()->node) out = v, found = true;
      if (!found) throw Stop{"a next state is not among the traced ops"};
      const int r = c.reg_of(out);
      if (p.regs[static_cast<std::size_t>(r)].shared || p.regs[static_cast<std::size_t>(r)].width != p.hidden_size)
        throw Stop{fmt::format("a next state is {} values shared by every row, not one vector of {} per row",
                               p.regs[static_cast<std::size_t>(r)].width, p.hidden_size)};
      p.outputs.push_back(r);
    }
  } catch (const Stop& s) {
    p.stopped = s.why;
    p.code.clear();
    p.projections.clear();
    return p;
  }
  lay_out(p);
  p.loads.assign(p.projections.size(), 0);
  for (const Instr& i : p.code)
    if (i.op == Opcode::LoadProjection) ++p.loads[static_cast<std::size_t>(i.a)];
  return p;
}

}  // namespace kiln::plugins
