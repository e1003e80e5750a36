"""A renderer of documents that knows nothing of what they are about: blocks of text, tables,
charts and pictures (`document`), rendered as one self-contained HTML page (`html`, Jinja
templates and the package's `assets/`) and as Markdown (`markdown`), and written as files
(`write`). The lecture's report is built from it by `cnnarch.lecture.build`.
"""
