"""Reports built from the KPI service and the registry, never from a formula of their own.

`evaluation.py` gathers the content of the pilot evaluation report (every figure a value the
KPI API answers for the same pilot and period), `judgement.py` holds the few rules a report
adds on top (met or not against a target, the with-and-without change, the usage corners),
`charts.py` draws its SVG charts, `render.py` turns the content into HTML, PDF/A-3b and XLSX.
"""
