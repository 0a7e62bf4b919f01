import { mount } from 'svelte';
import './app.css';
import App from './App.svelte';
import { applyTheme, rememberedTheme, resolveTheme, systemPrefersDark } from './lib/theme';

const target = document.getElementById('app');
if (!target) throw new Error('Hearth: #app element missing from index.html');

// Paint the first frame in the last known theme; the saved setting takes over once it is read.
applyTheme(document.documentElement, resolveTheme(rememberedTheme(), systemPrefersDark()));

export default mount(App, { target });
