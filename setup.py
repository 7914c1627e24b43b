"""Packaging for nbdev 2: every field comes from settings.ini."""
from configparser import ConfigParser
import setuptools

cfg = ConfigParser(delimiters=['='])
cfg.read('settings.ini', encoding='utf-8')
cfg = cfg['DEFAULT']
licenses = dict(apache2=('Apache Software License 2.0', 'OSI Approved :: Apache Software License'))
lic = licenses[cfg['license']]
split = lambda key: cfg.get(key, '').split()

setuptools.setup(
    name=cfg['lib_name'], version=cfg['version'], description=cfg['description'],
    long_description=open('README.md', encoding='utf-8').read(), long_description_content_type='text/markdown',
    author=cfg['author'], author_email=cfg['author_email'], license=lic[0], url=cfg['git_url'],
    keywords=cfg['keywords'], python_requires=f">={cfg['min_python']}",
    classifiers=['Development Status :: 3 - Alpha', f'License :: {lic[1]}', 'Natural Language :: English',
                 'Programming Language :: Python :: 3', 'Intended Audience :: Science/Research',
                 'Topic :: Scientific/Engineering :: Image Recognition'],
    packages=setuptools.find_packages(include=['diffiml', 'diffiml.*']), include_package_data=True,
    install_requires=split('requirements'), extras_require={'dev': split('dev_requirements')},
    entry_points={'console_scripts': split('console_scripts'), 'nbdev': [f"{cfg['lib_path']}={cfg['lib_path']}._modidx:d"]},
    zip_safe=False)
