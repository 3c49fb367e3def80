import type { ChartConfiguration, Plugin } from 'chart.js';

export const CHART_WIDTH = 760;
export const CHART_HEIGHT = 380;

// Charts render onto a white page, whatever viewer shows the PNG.
const whiteBackground: Plugin = {
  id: 'white-background',
  beforeDraw(chart) {
    const { ctx, width, height } = chart;
    ctx.save();
    ctx.fillStyle = '#ffffff';
    ctx.fillRect(0, 0, width, height);
    ctx.restore();
  },
};

let loaded: Promise<{ Chart: typeof import('chart.js').Chart; createCanvas: typeof import('@napi-rs/canvas').createCanvas }> | undefined;

/** Chart.js and a Skia canvas, loaded on first use: only the report draws charts outside a browser. */
function load() {
  loaded ??= Promise.all([import('chart.js'), import('@napi-rs/canvas')]).then(([chartjs, canvas]) => {
    chartjs.Chart.register(...chartjs.registerables);
    return { Chart: chartjs.Chart, createCanvas: canvas.createCanvas };
  });
  return loaded;
}

/** A chart as PNG bytes, drawn with Chart.js on a Skia canvas (no browser), at a device pixel ratio of 2. */
export async function renderChartPng(config: ChartConfiguration, width = CHART_WIDTH, height = CHART_HEIGHT): Promise<Buffer> {
  const { Chart, createCanvas } = await load();
  const canvas = createCanvas(width, height);
  const ctx = canvas.getContext('2d');
  const chart = new Chart(ctx as unknown as CanvasRenderingContext2D, {
    ...config,
    options: { ...config.options, devicePixelRatio: 2, responsive: false, animation: false },
    plugins: [whiteBackground, ...(config.plugins ?? [])],
  } as ChartConfiguration);
  try {
    return await canvas.encode('png');
  } finally {
    chart.destroy();
  }
}
