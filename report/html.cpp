#include "report/html.hpp"

#include <fmt/format.h>

#include "io/atomic_file.hpp"
#include "report/svg.hpp"

namespace kiln::report {
namespace {

constexpr const char* kStyle = R"(body{font-family:sans-serif;margin:24px auto;max-width:1100px;color:#222}
h1{font-size:22px}h2{font-size:18px;margin-top:28px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:13px;margin:8px 0}th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f2f2f2}td:first-child,th:first-child{text-align:left}
pre{background:#f7f7f7;padding:8px;font-size:12px;overflow-x:auto}figure{margin:12px 0}figcaption{font-size:13px;color:#555}
.better{background:#e3f4e3}.worse{background:#f9e0e0})";

// Note [Render check].
constexpr const char* kRenderCheck = R"(<script>
window.addEventListener('load', function () {
  var figures = document.querySelectorAll('svg.kiln-figure'), drawn = 0;
  figures.forEach(function (svg) {
    var marks = svg.querySelector('.marks'), box = marks ? marks.getBBox() : null;
    var ok = !!box && box.width > 0 && box.height > 0 && marks.childElementCount > 0;
    svg.setAttribute('data-rendered', ok ? 'yes' : 'no');
    if (box) svg.setAttribute('data-drawn', Math.round(box.width) + 'x' + Math.round(box.height));
    drawn += ok ? 1 : 0;
  });
  document.body.setAttribute('data-figures', figures.length);
  document.body.setAttribute('data-rendered-figures', drawn);
});
</script>)";

}  // namespace

Page::Page(std::string title) : title_(std::move(title)) {}

void Page::heading(const std::string& text, const std::string& id) {
  body_ += id.empty() ? fmt::format("<h2>{}</h2>\n", escape(text)) : fmt::format("<h2 id=\"{}\">{}</h2>\n", escape(id), escape(text));
}

void Page::paragraph(const std::string& text) { body_ += fmt::format("<p>{}</p>\n", escape(text)); }

void Page::raw(const std::string& html) { body_ += fmt::format("<p>{}</p>\n", html); }

void Page::table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows, const std::string& id) {
  body_ += id.empty() ? "<table>\n<tr>" : fmt::format("<table id=\"{}\">\n<tr>", escape(id));
  for (const auto& h : header) body_ += fmt::format("<th>{}</th>", escape(h));
  body_ += "</tr>\n";
  for (const auto& row : rows) {
    body_ += "<tr>";
    for (const auto& cell : row) {
      // A cell "+text" or "-text" is marked better or worse (a sweep's comparison); the sign is not shown.
      if (cell.size() > 1 && (cell[0] == '+' || cell[0] == '-') && cell[1] == ' ')
        body_ += fmt::format("<td class=\"{}\">{}</td>", cell[0] == '+' ? "better" : "worse", escape(cell.substr(2)));
      else
        body_ += fmt::format("<td>{}</td>", escape(cell));
    }
    body_ += "</tr>\n";
  }
  body_ += "</table>\n";
}

void Page::figure(const std::string& svg, const std::string& caption) {
  body_ += fmt::format("<figure>\n{}<figcaption>{}</figcaption>\n</figure>\n", svg, escape(caption));
}

void Page::pre(const std::string& text) { body_ += fmt::format("<pre>{}</pre>\n", escape(text)); }

std::string Page::html() const {
  return fmt::format("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<style>{}</style>\n"
                     "</head>\n<body>\n<h1>{}</h1>\n{}{}\n</body>\n</html>\n",
                     escape(title_), kStyle, escape(title_), body_, kRenderCheck);
}

void Page::write(const std::string& path) const { io::write_file_atomic(path, html()); }

}  // namespace kiln::report
