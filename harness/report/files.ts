/** The report's files in a results folder (compare links the PNG without loading the renderer). */
export const REPORT_FILE = 'report.html';
export const KEY_CHART_FILE = 'key-chart.png';
